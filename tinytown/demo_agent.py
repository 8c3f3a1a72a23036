"""An offline stand-in for an AI coding CLI: reads its prompt on stdin and answers
with a short summary of it. Used by the demo (`--cli demo`) so a town runs end to
end without network access or API keys.
"""

from __future__ import annotations

import os
import re
import sys
import time


def summarize(prompt: str) -> str:
    words = re.findall(r"\w+", prompt)
    task = ""
    lines = prompt.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("## "):
            task = " ".join(x.strip() for x in lines[i + 1 : i + 3] if x.strip())
    agent = os.environ.get("TINYTOWN_AGENT_NAME", "agent")
    return (
        f"{agent} read a prompt of {len(lines)} lines and {len(words)} words.\n"
        f"Task: {task[:200] or '(none found)'}\n"
        "Done: summarized the request (demo agent, no model involved)."
    )


def main() -> None:
    prompt = sys.stdin.read()
    time.sleep(float(os.environ.get("TINYTOWN_DEMO_DELAY", "0.5")))  # look busy
    print(summarize(prompt))


if __name__ == "__main__":
    main()
