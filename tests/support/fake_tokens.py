"""A stand-in for a CLI that reports tokens but no cost, in Codex's format (`codex exec
--json` events), as Codex and Gemini CLI do: 100 uncached input, 20 cached and 30
output tokens, 150 a run. It records each run in $FAKE_AGENT_DIR/tokens.log (one line a run)."""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path


def main() -> None:
    sys.stdin.read()
    out = Path(os.environ.get("FAKE_AGENT_DIR") or ".")
    out.mkdir(parents=True, exist_ok=True)
    with (out / "tokens.log").open("a") as f:
        f.write("run\n")
    for event in (
        {"type": "thread.started", "thread_id": str(uuid.uuid4())},
        {"type": "item.completed", "item": {"type": "agent_message", "text": "done"}},
        {"type": "turn.completed",
         "usage": {"input_tokens": 120, "cached_input_tokens": 20, "output_tokens": 30}},
    ):
        print(json.dumps(event))


if __name__ == "__main__":
    main()
