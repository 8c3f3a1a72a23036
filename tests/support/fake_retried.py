"""A stand-in for a CLI that met a rate limit, retried past it on its own and finished:
`codex` prints Codex's JSONL (a `Reconnecting... 1/5 (… 429 …)` error event, then the
answer and a completed turn), `aider` prints aider's text with the 429 it retried on
stderr. Either exits 0. The prompt is read and ignored.

`copilot` (as the copilot preset runs it) keeps a session whose token totals it writes
to `--usage-output-file` (100 input and 10 output tokens a run, summed over the
session); a prompt with `@limit <ISO time>` ends the run at a usage limit after its
tokens were spent."""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path

RETRIED = ("exceeded retry limit, last status: 429 Too Many Requests, request id: req_1;"
           " try again in 1s")


def copilot(prompt: str, argv: list[str]) -> None:
    session = argv[argv.index("--resume") + 1] if "--resume" in argv else str(uuid.uuid4())
    records = Path(os.environ["FAKE_AGENT_DIR"])
    records.mkdir(parents=True, exist_ok=True)
    runs = records / f"copilot-{session}.runs"
    done = (int(runs.read_text()) if runs.exists() else 0) + 1
    runs.write_text(str(done))
    usage = {"inputTokens": 100 * done, "outputTokens": 10 * done, "cacheReadTokens": 0,
             "cacheWriteTokens": 0}
    Path(argv[argv.index("--usage-output-file") + 1]).write_text(json.dumps(
        {"modelMetrics": {"gpt-4o": {"usage": usage}}}))
    limit = prompt.split("@limit ", 1)[1].split()[0] if "@limit " in prompt else None
    marker = records / "copilot.limited"
    if limit and not marker.exists():
        marker.write_text(limit)
        print(json.dumps({"type": "session.error", "data": {
            "message": f"429 usage limit reached, resets at {limit}"}}))
        print(json.dumps({"type": "result", "sessionId": session, "exitCode": 1}))
        sys.exit(1)
    print(json.dumps({"type": "assistant.message", "data": {"content": "copilot done"}}))
    print(json.dumps({"type": "result", "sessionId": session, "exitCode": 0}))


def main() -> None:
    prompt = sys.stdin.read()
    if sys.argv[1] == "copilot":
        copilot(prompt, sys.argv[2:])
    elif sys.argv[1:] == ["codex"]:
        for event in (
            {"type": "thread.started", "thread_id": "0199a213-81c0-7800-8aa1-bbab2a035a53"},
            {"type": "turn.started"},
            {"type": "error", "message": f"Reconnecting... 1/5 ({RETRIED})"},
            {"type": "item.completed", "item": {"id": "item_0", "type": "agent_message",
                                                "text": "done after a retry"}},
            {"type": "turn.completed", "usage": {"input_tokens": 20, "cached_input_tokens": 0,
                                                 "output_tokens": 4}},
        ):
            print(json.dumps(event), flush=True)
    else:
        print(f"litellm.RateLimitError: {RETRIED}; retrying in 1s", file=sys.stderr)
        print("done after a retry\nTokens: 20 sent, 4 received.")


if __name__ == "__main__":
    main()
