"""Reading what the agent CLIs print: Codex's retried errors, Gemini CLI's and Claude
Code's stream-json events (and their old single JSON reports)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tinytown.core.outcomes import read_report


def _jsonl(*events: dict[str, Any]) -> str:
    return "\n".join(json.dumps(e) for e in events) + "\n"


RECONNECT = {"type": "error", "message": "Reconnecting... 1/5 (unexpected status 404 Not "
             "Found: stub: no WebSocket transport, use HTTPS, url: ws://127.0.0.1:1/v1/"
             "responses)"}


def test_a_codex_turn_that_completed_after_retries_is_done() -> None:
    report = read_report("codex-jsonl", _jsonl(
        {"type": "thread.started", "thread_id": "th1"}, {"type": "turn.started"},
        RECONNECT, {**RECONNECT, "message": RECONNECT["message"].replace("1/5", "2/5")},
        {"type": "item.completed", "item": {"id": "i0", "type": "error",
                                            "message": "Falling back to HTTPS"}},
        {"type": "item.completed", "item": {"type": "agent_message", "text": "Wrote it"}},
        {"type": "turn.completed", "usage": {"input_tokens": 9, "output_tokens": 2}}))
    assert (report.found, report.result, report.error, report.session_id) == (
        True, "Wrote it", None, "th1")
    assert report.usage["input_tokens"] == 9


def test_a_codex_error_with_no_completed_turn_after_it_fails() -> None:
    retrying = read_report("codex-jsonl", _jsonl(
        {"type": "thread.started", "thread_id": "th1"}, {"type": "turn.started"}, RECONNECT))
    assert retrying.error is not None and retrying.error.startswith("Reconnecting... 1/5")
    failed = read_report("codex-jsonl", _jsonl(
        {"type": "turn.started"}, RECONNECT,
        {"type": "error", "message": "exceeded retry limit, last status: 429"},
        {"type": "turn.failed", "error": {"message": "exceeded retry limit, last status: 429"}}))
    assert failed.error == "exceeded retry limit, last status: 429"
    # a turn that completed, and then an error that ended the run
    after = read_report("codex-jsonl", _jsonl(
        {"type": "turn.completed", "usage": {}}, {"type": "error", "message": "boom"}))
    assert after.error == "boom"


SAMPLES = Path(__file__).parents[1] / "stubs" / "samples"


def test_gemini_stream_json_as_the_real_cli_printed_it() -> None:
    ok = read_report("gemini-json", (SAMPLES / "gemini-stream-success.jsonl").read_text())
    assert (ok.found, ok.error, ok.result) == (True, None, "Wrote out.txt.")
    assert ok.session_id == "5bf6402c-aee3-440b-aa44-5d60566dc559"
    assert ok.usage == {"input_tokens": 12258, "cached_input_tokens": 0, "output_tokens": 52}
    failed = read_report("gemini-json",
                         (SAMPLES / "gemini-stream-error-400.jsonl").read_text())
    assert failed.error == "400 INVALID_ARGUMENT: Request contains an invalid argument."
    assert failed.session_id == "c2b0636a-993b-4eab-bf0e-959bd315130c"


def test_gemini_stream_json_errors_thoughts_and_an_unfinished_run() -> None:
    init = {"type": "init", "session_id": "g1", "model": "m"}
    limited = read_report("gemini-json", _jsonl(init, {
        "type": "result", "status": "error", "error": {"type": "unknown", "message":
            "[API Error: Resource has been exhausted (e.g. check quota).\nSuggested retry "
            "after 5s.]\nPlease wait and try again later."}}))
    assert limited.error == "Resource has been exhausted (e.g. check quota)."
    # a stream it judged invalid: the error event says why, the result only that it failed
    invalid = read_report("gemini-json", _jsonl(
        init, {"type": "error", "severity": "warning", "message": "retrying"},
        {"type": "error", "severity": "error", "message": "Model stream ended empty"},
        {"type": "result", "status": "error", "stats": {}}))
    assert invalid.error == "Model stream ended empty"
    # warnings do not fail a run that succeeded; thoughts count as output
    thinking = read_report("gemini-json", _jsonl(
        init, {"type": "error", "severity": "error", "message": "quota, retried"},
        {"type": "message", "role": "assistant", "content": "do", "delta": True},
        {"type": "message", "role": "assistant", "content": "ne", "delta": True},
        {"type": "result", "status": "success", "stats": {"models": {"m": {
            "total_tokens": 130, "input_tokens": 100, "cached": 40, "output_tokens": 10}}}}))
    assert (thinking.error, thinking.result) == (None, "done")
    assert thinking.usage == {"input_tokens": 60, "cached_input_tokens": 40,
                              "output_tokens": 30}
    killed = read_report("gemini-json", _jsonl(init, {"type": "tool_use"}), "Killed")
    assert (killed.found, killed.session_id, killed.hint) == (False, "g1", "Killed")


def test_claude_stream_json_as_the_real_cli_printed_it() -> None:
    ok = read_report("claude-json", (SAMPLES / "claude-stream-success.jsonl").read_text())
    assert (ok.found, ok.error, ok.result) == (True, None, "Wrote out.txt.")
    assert ok.session_id and ok.usage["output_tokens"] > 0 and ok.usage["cost_usd"] > 0
    failed = read_report("claude-json",
                         (SAMPLES / "claude-stream-error-400.jsonl").read_text())
    assert failed.error == "API Error: 400 Request contains an invalid argument."
    # the single JSON report of `--output-format json` is read as before
    old = read_report("claude-json", (SAMPLES / "claude-success.json").read_text())
    assert (old.error, old.result) == (None, "Wrote out.txt.")
