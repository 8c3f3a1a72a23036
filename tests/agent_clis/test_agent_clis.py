"""How Tinytown describes agent CLIs, reads their outcomes and carries their sessions,
driven in-process with a stand-in CLI in Claude Code's output format
(tests/support/fake_structured.py). The real CLIs against stubs of their model APIs are in
the real-CLI tier (tests/realcli/)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import STRUCTURED, TT, InProcessWorker, TownFixture, run_task
from tinytown.core.errors import ConfigError, Refused
from tinytown.core.models import SpawnMode, TaskState
from tinytown.core.outcomes import read_report
from tinytown.core.presets import ARG_LIMIT, PromptVia, resolve_cli, with_prompt_limit
from tinytown.core.settings import Settings
from tinytown.worker.prompt import CONTEXT_BEGIN

Factory = Callable[..., TownFixture]
Workers = Callable[..., InProcessWorker]


def _runs(town: TownFixture) -> list[dict[str, object]]:
    path = town.records / "structured.log"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def town_s(town_factory: Factory, monkeypatch: pytest.MonkeyPatch) -> TownFixture:
    town = town_factory(extra=STRUCTURED)
    monkeypatch.setenv("FAKE_AGENT_DIR", str(town.records))  # the in-process CLI's records
    return town


def test_the_result_is_the_agents_answer_and_its_session_goes_on(
    town_s: TownFixture, worker_in_process: Workers,
) -> None:
    town_s.town.spawn_agent("a", cli="structured", start=False)
    worker = worker_in_process(town_s, "a")
    first = run_task(town_s, worker, "a", "first job")
    task = town_s.town.store.require_task(first)
    assert task.state == TaskState.COMPLETED
    assert task.result == "the answer"  # the answer, not the JSON report
    session = town_s.town.resolve("a").session_id
    assert session
    run_task(town_s, worker, "a", "second job")
    runs = _runs(town_s)
    assert "--resume" not in runs[0]["argv"]  # type: ignore[operator]
    assert runs[1]["argv"][-2:] == ["--resume", session]  # type: ignore[index]
    assert town_s.town.resolve("a").session_id == session
    log = (town_s.town.settings.logs_dir / "a" / "round-2.log").read_text()
    assert f"continues session {session}" in log


def test_a_fresh_agent_starts_each_task_anew(
    town_s: TownFixture, worker_in_process: Workers,
) -> None:
    town_s.town.spawn_agent("f", cli="structured", start=False, session="fresh")
    worker = worker_in_process(town_s, "f")
    run_task(town_s, worker, "f", "one")
    run_task(town_s, worker, "f", "two")
    assert all("--resume" not in r["argv"] for r in _runs(town_s))  # type: ignore[operator]
    assert town_s.town.resolve("f").session_id  # kept, for --resume f


def test_an_error_the_cli_reports_fails_the_task_in_one_line(
    town_s: TownFixture, worker_in_process: Workers,
) -> None:
    town_s.town.spawn_agent("e", cli="structured", start=False)
    worker = worker_in_process(town_s, "e")
    task_id = run_task(town_s, worker, "e", "do it @fail 400 invalid_request_error: bad model")
    task = town_s.town.store.require_task(task_id)
    assert task.state == TaskState.FAILED
    assert task.result == "API Error: 400 invalid_request_error: bad model"


def test_a_fork_starts_from_the_parents_session(
    town_s: TownFixture, worker_in_process: Workers,
) -> None:
    town_s.town.spawn_agent("p", cli="structured", start=False)
    run_task(town_s, worker_in_process(town_s, "p"), "p", "the parent's job")
    parent_session = town_s.town.resolve("p").session_id
    town_s.town.spawn_agent("c", cli="structured", parent="p", fork=True, start=False)
    run_task(town_s, worker_in_process(town_s, "c"), "c", "the child's job")
    child_run = _runs(town_s)[-1]
    assert child_run["argv"][-3:] == ["--resume", parent_session, "--fork-session"]  # type: ignore[index]
    # the CLI forked the conversation itself: no transcript in the prompt
    assert CONTEXT_BEGIN.split("{")[0] not in str(child_run["prompt"])
    child = town_s.town.resolve("c")
    assert child.session_id and child.session_id != parent_session


def test_spawn_resume_continues_another_agents_session(
    town_s: TownFixture, worker_in_process: Workers,
) -> None:
    town_s.town.spawn_agent("old", cli="structured", start=False)
    run_task(town_s, worker_in_process(town_s, "old"), "old", "remember this")
    session = town_s.town.resolve("old").session_id
    handle = town_s.town.spawn_agent("new", resume="old", start=False)
    record = handle.record()
    assert record.cli == "structured" and record.spawn_mode == SpawnMode.RESUMED
    assert record.session_id == session
    run_task(town_s, worker_in_process(town_s, "new"), "new", "what was it?")
    assert _runs(town_s)[-1]["argv"][-2:] == ["--resume", session]  # type: ignore[index]
    town_s.town.spawn_agent("x", cli="structured", start=False)  # no round yet
    with pytest.raises(Refused, match="no CLI session"):
        town_s.town.spawn_agent("y", resume="x", start=False)


def test_a_session_that_is_gone_gives_way_to_a_new_one(
    town_s: TownFixture, worker_in_process: Workers,
) -> None:
    town_s.town.spawn_agent("g", cli="structured", resume="no-such-session", start=False)
    task_id = run_task(town_s, worker_in_process(town_s, "g"), "g", "carry on")
    assert town_s.town.store.require_task(task_id).state == TaskState.COMPLETED
    runs = _runs(town_s)
    assert runs[0]["argv"][-2:] == ["--resume", "no-such-session"]  # type: ignore[index]
    assert "--resume" not in runs[1]["argv"]  # type: ignore[operator]
    session = town_s.town.resolve("g").session_id
    assert session and session != "no-such-session"


def test_a_cli_without_a_report_succeeds_on_exit_zero_with_its_stdout(
    town_s: TownFixture, worker_in_process: Workers,
) -> None:
    town_s.town.spawn_agent("t", cli="structured", start=False)
    task_id = run_task(town_s, worker_in_process(town_s, "t"), "t", "talk @nojson")
    task = town_s.town.store.require_task(task_id)
    assert task.state == TaskState.COMPLETED and task.result == "plain text, no report"


def _settings(tmp_path: Path, extra: str) -> Settings:
    return Settings.from_mapping(tmp_path, {"town": {"name": "t"}, **_toml(extra)}, {})


def _toml(text: str) -> dict[str, object]:
    import tomllib

    return tomllib.loads(text)


def test_an_entry_named_like_a_preset_extends_it(tmp_path: Path) -> None:
    plain = resolve_cli(_settings(tmp_path, ""), "claude")
    extended = resolve_cli(_settings(tmp_path, '[agent_clis.claude]\nenv = {X = "1"}\n'),
                           "claude")
    assert extended.argv == plain.argv and extended.output == "claude-json"
    assert extended.resume_args == plain.resume_args and extended.env == {"X": "1"}
    other = resolve_cli(_settings(tmp_path, '[agent_clis.claude]\n'
                                            'command = "claude --print --model opus"\n'),
                        "claude")
    assert other.argv == ["claude", "--print", "--model", "opus"]
    assert other.output == "claude-json" and other.output_args == plain.output_args


def test_a_cli_of_ones_own_is_described_fully(tmp_path: Path) -> None:
    mine = resolve_cli(_settings(tmp_path, """
[agent_clis.mine]
command = "mybot run"
prompt = "file"
prompt_flag = "--task-file"
output = "codex-jsonl"
resume_args = "resume {session}"
workdir = "src"
env = { MODE = "x" }
"""), "mine")
    assert mine.argv == ["mybot", "run"] and mine.prompt_via == PromptVia.FILE
    assert mine.prompt_flag == "--task-file" and mine.output == "codex-jsonl"
    assert mine.round_argv("S1") == ["mybot", "run", "resume", "S1"]
    assert mine.workdir == "src" and mine.env == {"MODE": "x"}
    with pytest.raises(ConfigError, match="missing required field `command`"):
        _settings(tmp_path, "[agent_clis.nothing]\nprompt = 'file'\n")


def test_a_large_prompt_is_never_an_argument(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "")
    for name in ("claude", "codex", "gemini", "copilot", "aider", "auggie"):
        assert resolve_cli(settings, name).prompt_via != PromptVia.ARG, name
    cursor = resolve_cli(settings, "cursor")
    assert with_prompt_limit(cursor, "x" * 1000) is None
    refusal = with_prompt_limit(cursor, "x" * ARG_LIMIT)
    assert refusal is not None and "stdin" in refusal


def test_reports_of_each_format() -> None:
    claude = read_report("claude-json", '{"type":"result","subtype":"success",'
                         '"is_error":true,"result":"API Error: 529 overloaded\\nmore",'
                         '"session_id":"s1","total_cost_usd":0.5,"usage":{"input_tokens":3}}')
    assert claude.error == "API Error: 529 overloaded" and claude.session_id == "s1"
    assert claude.usage == {"input_tokens": 3, "cached_input_tokens": 0, "output_tokens": 0,
                            "cost_usd": 0.5}
    codex = read_report("codex-jsonl", "\n".join(json.dumps(e) for e in [
        {"type": "thread.started", "thread_id": "th1"},
        {"type": "item.completed", "item": {"type": "agent_message", "text": "done it"}},
        {"type": "turn.completed", "usage": {"input_tokens": 7, "output_tokens": 2}},
    ]))
    assert (codex.result, codex.error, codex.session_id) == ("done it", None, "th1")
    assert codex.usage == {"input_tokens": 7, "cached_input_tokens": 0, "output_tokens": 2}
    failed = read_report("codex-jsonl", json.dumps(
        {"type": "turn.failed", "error": {"message": "exceeded retry limit, last status: 429"}}))
    assert failed.error == "exceeded retry limit, last status: 429"
    gemini = read_report("gemini-json", json.dumps(
        {"response": "ok", "stats": {"models": {"m": {"tokens": {"prompt": 4}}}}}))
    assert (gemini.result, gemini.error) == ("ok", None)
    assert gemini.usage == {"input_tokens": 4, "cached_input_tokens": 0, "output_tokens": 0}
    garbage = read_report("claude-json", "Segmentation fault")
    assert not garbage.found


SAMPLES = Path(__file__).parents[1] / "stubs" / "samples"


def test_reports_of_the_real_clis_as_they_printed_them() -> None:
    """Samples the real Claude Code and Gemini CLI printed against the stubs."""
    ok = read_report("claude-json", (SAMPLES / "claude-success.json").read_text())
    assert (ok.found, ok.error, ok.result) == (True, None, "Wrote out.txt.")
    assert ok.session_id and ok.usage["output_tokens"] == 52 and ok.usage["cost_usd"] > 0
    limited = read_report("claude-json", (SAMPLES / "claude-error-429.json").read_text())
    assert limited.error is not None and limited.error.startswith("API Error: Request rejected")
    gemini = read_report("gemini-json", (SAMPLES / "gemini-success.json").read_text())
    assert (gemini.error, gemini.result) == (None, "Wrote out.txt.") and gemini.session_id
    # a failed Gemini run: nothing on stdout, a stack trace and the report on stderr
    report = (SAMPLES / "gemini-error-400.json").read_text()
    stderr = "Error: boom\n    at x (file.js:1:2)\n" + report
    failed = read_report("gemini-json", "", stderr)
    assert failed.error == "400 INVALID_ARGUMENT: Request contains an invalid argument."


def test_logs_follow_shows_a_running_rounds_output_as_it_is_written(town: TownFixture) -> None:
    cli = "sh -c 'echo first-line; sleep 2; echo second-line'"
    assert town.tt("spawn", "live", "--cli", cli).code == 0
    town.wait_state("live", "idle", timeout=30)
    task_id = town.town.assign("live", "talk slowly")
    town.wait_task(task_id, TaskState.RUNNING)
    follower = subprocess.Popen([TT, "logs", "live", "--follow"], cwd=town.root,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert follower.stdout is not None
        seen = b""
        while b"first-line" not in seen:
            seen += follower.stdout.readline()
        # the first line is shown while the round still runs
        assert town.task_state(task_id) == TaskState.RUNNING
        while b"second-line" not in seen:
            seen += follower.stdout.readline()
        town.wait_task(task_id, TaskState.COMPLETED)
        # the next round's log is followed too
        town.town.assign("live", "again")
        while b"round-2.log" not in seen:
            seen += follower.stdout.readline()
    finally:
        follower.kill()
        follower.wait(10)
        if follower.stdout is not None:
            follower.stdout.close()


def test_spawn_warns_of_claude_as_root(town: TownFixture, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    if os.geteuid() != 0:
        pytest.skip("the case is root's")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "claude"
    fake.write_text("#!/bin/sh\necho '2.1.197 (Claude Code)'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("IS_SANDBOX", raising=False)
    spawned = town.tt("spawn", "rooted", "--cli", "claude")
    assert spawned.code == 0
    assert "refuses --dangerously-skip-permissions as root" in spawned.err
    assert "IS_SANDBOX=1" in spawned.err
    monkeypatch.setenv("IS_SANDBOX", "1")
    assert "as root" not in town.tt("spawn", "sandboxed", "--cli", "claude").err
    for name in ("rooted", "sandboxed"):
        town.tt("kill", name)


def _sample(name: str) -> tuple[str, str]:
    """A limit-* sample's stdout and stderr (tests/stubs/samples, made by limit-make.py)."""
    text = (SAMPLES / name).read_text()
    out = text.split("--- stdout\n", 1)[1]
    stdout, _, stderr = out.partition("--- stderr\n")
    return stdout, stderr


@pytest.mark.parametrize(("sample", "fmt", "resets"), [
    ("limit-claude-429-unified-oauth.txt", "claude-json", "2030-01-01T00:00:00+00:00"),
    ("limit-claude-429-usage-message.txt", "claude-json", "2030-01-01T00:00:00+00:00"),
    ("limit-claude-429-retry-after-5.txt", "claude-json", None),
    ("limit-claude-400-spend-limit.txt", "claude-json", "2030-01-01T00:00:00+00:00"),
    ("limit-codex-429-usage-limit-reached.txt", "codex-jsonl", "local 2030-01-01 00:00"),
    ("limit-codex-429-insufficient-quota.txt", "codex-jsonl", None),
    ("limit-gemini-429-retryinfo-5s.txt", "gemini-json", "+5s"),
    ("limit-gemini-429-per-day.txt", "gemini-json", None),
    ("limit-copilot-429-retry-after-5.txt", "copilot-jsonl", "+5s"),
    ("limit-aider-429-quota-no-pretty.txt", "aider-text", None),
])
def test_usage_limits_as_the_real_clis_said_them(sample: str, fmt: str,
                                                 resets: str | None) -> None:
    from datetime import UTC, datetime, timedelta

    from tinytown.core.outcomes import usage_limit

    stdout, stderr = _sample(sample)
    now = datetime(2029, 6, 1, tzinfo=UTC)
    report = read_report(fmt, stdout, stderr)
    limited, when = usage_limit(report, stderr, now)
    assert limited, (report.error, report.hint)
    if resets is None:
        return
    assert when is not None
    if resets.startswith("+"):
        assert when == now + timedelta(seconds=int(resets[1:-1]))
    elif resets.startswith("local "):
        local = datetime.fromisoformat(resets[6:]).astimezone()  # this machine's zone
        assert when == local.astimezone(UTC)
    else:
        assert when == datetime.fromisoformat(resets)


def test_an_ordinary_failure_is_no_usage_limit() -> None:
    from datetime import UTC, datetime

    from tinytown.core.outcomes import usage_limit

    stdout, stderr = _sample("limit-claude-400-credit-balance.txt")
    for report in (read_report("claude-json", (SAMPLES / "claude-error-400.json")
                               .read_text()), read_report("claude-json", stdout, stderr)):
        assert not usage_limit(report, "", datetime.now(UTC))[0], report.error


def test_logs_show_a_streaming_clis_events_as_what_happened(town: TownFixture) -> None:
    """Claude Code's stream-json round log, as `tt logs` shows it (and --raw as written)."""
    assert town.tt("spawn", "streamer", "--cli", "demo", "--no-start").code == 0
    folder = town.root / ".tt" / "logs" / "streamer"
    folder.mkdir(parents=True, exist_ok=True)
    events = (SAMPLES / "claude-stream-success.jsonl").read_text()
    (folder / "round-1.log").write_text(events + "plain stderr line\n")
    shown = town.tt("logs", "streamer").out.splitlines()
    assert "$ Bash: printf 'made by the agent' > out.txt" in shown
    assert "» Wrote out.txt." in shown and "= done: Wrote out.txt." in shown
    assert "plain stderr line" in shown and not any(line.startswith("{") for line in shown)
    assert town.tt("logs", "streamer", "--raw").out == events + "plain stderr line\n"


# --- the CLI modules (tinytown/agent_clis) ----------------------------------------------


def test_every_cli_module_answers_to_its_name_and_formats_map_to_one_module() -> None:
    from tinytown.agent_clis import registry

    clis = registry.builtin()
    assert list(clis)[:3] == ["claude", "auggie", "codex"]  # their `order`
    settings = Settings.from_mapping(Path("."), {"town": {"name": "t"}}, {})
    for name, cli in clis.items():
        assert name in cli.presets
        for preset in cli.presets:
            command = resolve_cli(settings, preset)
            assert command.description == cli.description
    formats = [c.output_format for c in clis.values() if c.output_format]
    assert len(formats) == len(set(formats))
    # the names users write in [agent_clis.<name>] output / mcp, each a module's
    for fmt in ("claude-json", "codex-jsonl", "gemini-json", "copilot-jsonl", "aider-text"):
        assert registry.by_output(fmt) is not None, fmt
    for mode in ("claude-json", "codex-config", "gemini-home"):
        assert registry.by_mcp(mode) is not None, mode
    assert resolve_cli(settings, "codex-mini").mcp == "codex-config"
    assert resolve_cli(settings, "auggie").output == "claude-json"


@pytest.mark.parametrize(("key", "value"), [("output", "klingon-json"), ("mcp", "smoke")])
def test_an_unknown_output_format_or_mcp_mode_is_a_config_error(key: str, value: str) -> None:
    data = {"town": {"name": "t"}, "agent_clis": {"mine": {"command": "x", key: value}}}
    with pytest.raises(ConfigError, match=f"agent_clis.mine.{key}: unknown .*{value}"):
        Settings.from_mapping(Path("."), data, {})
