"""The echo agent: reads its prompt on stdin and prints a JSON report of its own shape
(with --report echo); a prompt that asks for trouble gets an error in the report."""

from __future__ import annotations

import json
import sys


def main() -> int:
    prompt = sys.stdin.read()
    line = next((x for x in reversed(prompt.splitlines()) if "ECHO:" in x), "")
    said = line.split("ECHO:", 1)[1].strip() if line else ""
    trouble = "the echo is lost" if "TROUBLE" in said else None
    print("some chatter on stdout that is not the report")
    print(json.dumps({"type": "echo_heard", "said": said}))  # an event, for `tt logs`
    print(json.dumps({"echo": {"said": said, "trouble": trouble,
                               "spent": {"in": len(prompt), "out": len(said)}}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
