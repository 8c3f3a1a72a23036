"""A stand-in agent CLI that asks a person before it works, in Claude Code's output
format (`--output-format json`: one result object) with sessions, for the questions
scenario (tests/scenarios/test_questions.py).

A first run (its prompt carries no answer) ends its result with the structured last
line `QUESTION: which database?` (or the text after `@ask ` in the prompt); a run whose
prompt carries the person's answer ("Their answer:") completes with that answer, and
one whose prompt says `@noask` completes at once. Each
run is one JSON line in $FAKE_AGENT_DIR/asker.log: argv, prompt, the session it
worked in (its own new one, or the one `--resume` named).
"""

from __future__ import annotations

import json
import os
import re
import sys
import uuid
from pathlib import Path


def main() -> None:
    argv = sys.argv[1:]
    prompt = sys.stdin.read()
    out = Path(os.environ.get("FAKE_AGENT_DIR") or ".")
    out.mkdir(parents=True, exist_ok=True)
    session = argv[argv.index("--resume") + 1] if "--resume" in argv else str(uuid.uuid4())
    with (out / "asker.log").open("a") as f:
        f.write(json.dumps({"argv": argv, "prompt": prompt, "session": session}) + "\n")
    answered = re.search(r"Their answer:\n(.*)", prompt)
    if answered:
        result = f"done, using {answered.group(1).strip()}"
    elif "@noask" in prompt:
        result = "done, no questions"
    else:
        asked = re.search(r"@ask (.+)", prompt)
        result = ("I need to know one thing first.\n"
                  f"QUESTION: {asked.group(1).strip() if asked else 'which database?'}")
    print(json.dumps({"type": "result", "subtype": "success", "is_error": False,
                      "result": result, "session_id": session, "num_turns": 1}))


if __name__ == "__main__":
    main()
