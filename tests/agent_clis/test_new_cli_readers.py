"""The readers of opencode, Qwen Code and Cline CLI (their modules in tinytown/agent_clis/)
on what the real CLIs printed against the stub (tests/stubs/samples/, made by
tests/stubs/make_new_samples.py) and on hand-made lines for what the stub cannot provoke;
their events in `tt logs`; and the working folder a CLI is told (PWD), which opencode
takes over its real one.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tinytown.agent_clis import cline, opencode, qwen, registry
from tinytown.agent_clis.base import CliCommand
from tinytown.core import logview
from tinytown.worker.runner import run_cli

SAMPLES = Path(__file__).parents[1] / "stubs" / "samples"


def sample(name: str) -> str:
    return (SAMPLES / name).read_text()


def stderr_of(name: str) -> str:
    path = SAMPLES / name.replace(".jsonl", ".stderr")
    return path.read_text() if path.exists() else ""


@pytest.mark.parametrize("cli", ["opencode", "qwen", "cline"])
def test_the_reader_finds_the_answer_and_usage_of_a_run_with_a_shell_tool(cli: str) -> None:
    found = registry.of(cli)
    assert found is not None and found.origin == registry.BUILT_IN
    name = f"{cli}-success.jsonl"
    report = found.cli.read_report(sample(name), stderr_of(name))
    assert report.found and report.error is None
    assert report.result == "FINAL-ANSWER: out.txt written"
    assert report.usage["input_tokens"] > 0 and report.usage["output_tokens"] > 0
    if cli == "opencode":
        assert report.session_id and report.session_id.startswith("ses_")
    elif cli == "qwen":
        assert report.session_id and len(report.session_id) == 36
    else:  # Cline's events do not name its session
        assert report.session_id is None


@pytest.mark.parametrize("cli", ["opencode", "qwen", "cline"])
def test_the_reader_gives_the_apis_error_in_one_line(cli: str) -> None:
    found = registry.of(cli)
    assert found is not None
    name = f"{cli}-error-400.jsonl"
    report = found.cli.read_report(sample(name), stderr_of(name))
    assert report.found and report.error is not None
    assert "the stub refuses this request" in report.error and "\n" not in report.error


def test_qwen_an_api_error_reported_as_success_is_an_error() -> None:
    """Qwen Code ends a failed model request with subtype success, is_error false and
    exit 0: only the text of its result says so."""
    line = {"type": "result", "subtype": "success", "is_error": False, "session_id": "s1",
            "result": "[API Error: 429 Rate limit reached for requests]", "usage": {}}
    report = qwen.CLI.read_report(json.dumps(line) + "\n", "")
    assert report.error == "429 Rate limit reached for requests"
    said = {**line, "result": "The text says [API Error: 1] but is an answer"}
    assert qwen.CLI.read_report(json.dumps(said), "").error is None


def test_qwen_and_cline_count_cached_input_apart_from_the_rest() -> None:
    """Both report OpenAI's input count (cached included): the usage keeps them apart."""
    q = {"type": "result", "subtype": "success", "is_error": False, "session_id": "s",
         "result": "ok", "usage": {"input_tokens": 1000, "output_tokens": 5,
                                   "cache_read_input_tokens": 100}}
    assert qwen.CLI.read_report(json.dumps(q), "").usage == {
        "input_tokens": 900, "cached_input_tokens": 100, "output_tokens": 5}
    c = {"type": "run_result", "finishReason": "completed", "text": "ok",
         "usage": {"inputTokens": 1000, "outputTokens": 5, "cacheReadTokens": 100,
                   "cacheWriteTokens": 0, "totalCost": 0.25}}
    assert cline.CLI.read_report(json.dumps(c), "").usage == {
        "input_tokens": 900, "cached_input_tokens": 100, "output_tokens": 5,
        "cost_usd": 0.25}


def test_opencode_sums_its_steps_and_counts_cache_writes_as_input() -> None:
    def step(inp: int, out: int, read: int, write: int, cost: float) -> str:
        return json.dumps({"type": "step_finish", "sessionID": "ses_1", "part": {
            "type": "step-finish", "cost": cost, "tokens": {
                "input": inp, "output": out, "reasoning": 1,
                "cache": {"read": read, "write": write}}}})
    text = "\n".join([step(900, 10, 100, 0, 0.5), step(50, 4, 950, 20, 0.25)])
    report = opencode.CLI.read_report(text, "")
    assert report.usage == {"input_tokens": 970, "cached_input_tokens": 1050,
                            "output_tokens": 16, "cost_usd": 0.75}
    assert report.error is None and report.session_id == "ses_1"


def test_cline_an_error_before_the_run_is_on_stderr() -> None:
    stderr = ('{"ts":"2026-01-01T00:00:00Z","type":"error","message":"JSON output mode '
              'requires a prompt argument or piped stdin (interactive mode is unsupported)"}\n')
    report = cline.CLI.read_report("", stderr)
    assert report.found and report.error is not None
    assert report.error.startswith("JSON output mode requires a prompt argument")
    assert not cline.CLI.read_report("", "Segmentation fault\n").found


@pytest.mark.parametrize("cli,shows", [
    ("opencode", ["$ bash: printf 'made by the agent' > out.txt",
                  "» FINAL-ANSWER: out.txt written"]),
    ("qwen", ["$ run_shell_command: printf 'made by the agent' > out.txt",
              "» FINAL-ANSWER: out.txt written"]),
    ("cline", ["$ run_commands: printf 'made by the agent' > out.txt",
               "» FINAL-ANSWER: out.txt written", "= done"]),
])
def test_tt_logs_shows_what_the_agent_did(cli: str, shows: list[str]) -> None:
    lines = [logview.render(x) for x in sample(f"{cli}-success.jsonl").splitlines()]
    shown = "\n".join(x for x in lines if x)
    for line in shows:
        assert line in shown, shown
    assert '{"type"' not in shown  # every event shown as what happened, or left out


def test_gemini_events_are_still_shown_by_gemini() -> None:
    """opencode and Gemini CLI both have `tool_use` and `error` events; opencode's
    module (tried first) takes only its own, which name their session."""
    line = json.dumps({"type": "tool_use", "tool_name": "run_shell_command",
                       "parameters": {"command": "ls"}})
    assert logview.render(line) == "$ run_shell_command: ls"


def test_the_cli_is_told_its_working_folder_in_pwd(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """opencode runs its shell tool in $PWD, not in the folder it was started in: a
    worker started elsewhere would have it write there."""
    work = tmp_path / "work"
    work.mkdir()
    # not a shell: a shell mends a PWD that is not its cwd itself
    command = CliCommand("pwd", [sys.executable, "-c",
                                 "import os, sys; sys.stdout.write(os.environ['PWD'])"])
    env = {"PATH": "/usr/bin:/bin", "PWD": str(tmp_path)}  # the worker's own folder
    result = run_cli(command, "", cwd=work, env=env, log_path=tmp_path / "logs" / "r.log",
                     timeout=30)
    assert result.exit_code == 0 and result.stdout == str(work)


def test_their_presets_take_the_prompt_on_stdin_and_continue_sessions_where_they_can(
        tmp_path: Path) -> None:
    """A prompt of any size (never an argument); Cline's `" "` is the last argument, so
    its prompt (stdin) is not joined to anything else."""
    from tinytown.agent_clis.base import PromptVia
    from tinytown.core.presets import resolve_cli
    from tinytown.core.settings import Settings

    settings = Settings.from_mapping(tmp_path, {"town": {"name": "t"}}, {})
    oc, qw, cl = (resolve_cli(settings, n) for n in ("opencode", "qwen", "cline"))
    assert {c.prompt_via for c in (oc, qw, cl)} == {PromptVia.STDIN}
    assert oc.round_argv("ses_1", fork=True)[-3:] == ["--session", "ses_1", "--fork"]
    assert qw.round_argv("s1")[-2:] == ["--resume", "s1"] and qw.usage_totals
    assert not cl.sessions and cl.round_argv("s1")[-2:] == ["--json", " "]
