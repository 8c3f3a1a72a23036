"""A stand-in agent CLI for the review gate's scenarios, in Claude Code's format
(`--output-format json`: one result object, with sessions), playing either part:

- the author (any prompt but a review's): appends `round <N>` to work.txt in its folder
  (the agent's worktree: the round's commit, so the review's diff, carries it);
- the reviewer (a review task's prompt, "## Your answer"): answers with the next line
  of $FAKE_AGENT_DIR/verdicts (taken off the file): `approve`, `request-changes|NOTES`
  or `none` (an answer without a verdict), as its last line `VERDICT: ...`.

Each run is recorded in $FAKE_AGENT_DIR/reviewing.log (one JSON a line: agent, round,
task, argv, prompt).
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import uuid
from pathlib import Path


def next_verdict(out: Path) -> str:
    path = out / "verdicts"
    with path.open("r+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        lines = f.read().splitlines()
        f.seek(0)
        f.truncate()
        f.write("".join(line + "\n" for line in lines[1:]))
    return lines[0] if lines else "none"


def main() -> None:
    argv = sys.argv[1:]
    prompt = sys.stdin.read()
    out = Path(os.environ["FAKE_AGENT_DIR"])
    out.mkdir(parents=True, exist_ok=True)
    number = os.environ.get("TINYTOWN_ROUND", "?")
    with (out / "reviewing.log").open("a") as f:
        f.write(json.dumps({"agent": os.environ.get("TINYTOWN_AGENT_NAME"), "round": number,
                            "task": os.environ.get("TINYTOWN_TASK_ID"), "argv": argv,
                            "prompt": prompt}) + "\n")
    session = argv[argv.index("--resume") + 1] if "--resume" in argv else str(uuid.uuid4())
    if "## Your answer" in prompt:
        word, _, notes = next_verdict(out).partition("|")
        answer = "I read the diff." + ("" if word == "none" else
                                       f"\nVERDICT: {word}" + (f"\n{notes}" if notes else ""))
    else:
        with Path("work.txt").open("a") as f:
            f.write(f"round {number}\n")
        answer = f"appended round {number} to work.txt"
    print(json.dumps({"type": "result", "subtype": "success", "is_error": False,
                      "result": answer, "session_id": session, "num_turns": 1,
                      "usage": {"input_tokens": 10, "output_tokens": 5}}))


if __name__ == "__main__":
    main()
