"""A stand-in for a CLI with structured output and sessions, in Claude Code's format
(`--output-format json`: one result object), for the fast tier's tests of how
Tinytown reads outcomes and carries sessions. The real CLIs are tested against stubs
of their model APIs in the real-CLI tier.

It records its argv and prompt in $FAKE_AGENT_DIR/structured.log (one JSON per run).
A session it did not start is unknown to it (as Claude Code says, on stderr, exit 1).
Directives in the prompt: `@fail <text>` reports an API error (is_error, exit 1);
`@limit <ISO time>` reports a usage limit resetting then, once (the next run goes on);
`@noisy` writes warnings on stderr first; `@nojson` prints plain text.
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
    with (out / "structured.log").open("a") as f:
        f.write(json.dumps({"argv": argv, "prompt": prompt}) + "\n")
    if "@noisy" in prompt:
        print("WARNING: something the CLI warns about on stderr", file=sys.stderr)
    if "@nojson" in prompt:
        print("plain text, no report")
        return
    known = out / "structured.sessions"
    session = argv[argv.index("--resume") + 1] if "--resume" in argv else None
    if session is not None and session not in (known.read_text().split() if known.exists()
                                               else []):
        print(f"No conversation found with session ID: {session}", file=sys.stderr)
        sys.exit(1)
    if session is None or "--fork-session" in argv:
        session = str(uuid.uuid4())
        with known.open("a") as f:
            f.write(session + "\n")
    limit = re.search(r"@limit (\S+)", prompt)
    marker = out / "structured.limited"
    if limit and not marker.exists():
        marker.write_text(limit.group(1))
        failed = re.match(r"(.+)", f"Request rejected (429) · usage limit reached, resets at"
                                   f" {limit.group(1)}")
    else:
        failed = re.search(r"@fail (.+)", prompt)
    report = {
        "type": "result", "subtype": "success", "is_error": bool(failed),
        "result": f"API Error: {failed.group(1)}" if failed else "the answer",
        "session_id": session, "num_turns": 1,
        "usage": {"input_tokens": 12, "output_tokens": 5, "cache_read_input_tokens": 3},
        "total_cost_usd": 0.0012,
    }
    print(json.dumps(report))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
