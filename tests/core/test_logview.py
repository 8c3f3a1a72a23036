"""tinytown.core.logview: each streaming CLI's events (samples the real CLIs printed) as lines."""

from __future__ import annotations

from pathlib import Path

from tinytown.core.logview import render

SAMPLES = Path(__file__).parents[1] / "stubs" / "samples"


def shown(name: str) -> list[str]:
    lines = (SAMPLES / name).read_text().splitlines()
    return [r for line in lines if (r := render(line)) is not None]


def test_claude_stream() -> None:
    assert shown("claude-stream-success.jsonl")[1:] == [
        "» Writing out.txt.", "$ Bash: printf 'made by the agent' > out.txt",
        "  ↳ (Bash completed with no output)", "» Wrote out.txt.", "= done: Wrote out.txt."]
    assert shown("claude-stream-error-400.jsonl")[-1].startswith("= error: API Error: 400")


def test_gemini_codex_copilot_streams() -> None:
    assert shown("gemini-stream-success.jsonl")[1:] == [
        "» Writing out.txt.", "$ run_shell_command: printf 'made by the agent' > out.txt",
        "  ↳ (no output)", "» Wrote out.txt.", "= done"]
    assert shown("codex-success.jsonl")[1:] == [
        "$ /bin/bash -lc 'echo hello > out.txt'", "  ↳ exit 0", "» All done: wrote out.txt",
        "= turn completed"]
    copilot = shown("copilot-success.jsonl")
    assert copilot[0] == "$ bash: echo hello > out.txt" and copilot[-1] == "= done"


def test_other_lines_are_kept_and_long_ones_cut() -> None:
    assert render("plain text") == "plain text"
    assert render('{"not": "an event"}') == '{"not": "an event"}'
    assert render("{broken") == "{broken"
    long = '{"type":"item.started","item":{"type":"command_execution","command":"' \
        + "x" * 500 + '"}}'
    line = render(long)
    assert line is not None and len(line) < 220 and line.endswith("…")
