"""A stand-in for a CLI that met a rate limit, retried past it on its own and finished:
`codex` prints Codex's JSONL (a `Reconnecting... 1/5 (… 429 …)` error event, then the
answer and a completed turn), `aider` prints aider's text with the 429 it retried on
stderr. Either exits 0. The prompt is read and ignored."""

from __future__ import annotations

import json
import sys

RETRIED = ("exceeded retry limit, last status: 429 Too Many Requests, request id: req_1;"
           " try again in 1s")


def main() -> None:
    sys.stdin.read()
    if sys.argv[1:] == ["codex"]:
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
