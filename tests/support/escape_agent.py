"""An agent CLI whose tools leave processes behind, out of its process group.

    python escape_agent.py          the CLI: reads its prompt on stdin
    python escape_agent.py setsid DIR [stubborn]
    python escape_agent.py parent DIR
    python escape_agent.py double DIR

The CLI starts two children and waits until both escapees run:
- `setsid`: a child that calls setsid() and sleeps (a shell tool in a session of its
  own, as Claude Code, Gemini CLI, Copilot CLI and auggie start them); with
  `@stubborn` in the prompt it ignores SIGTERM;
- `parent`: a child in the CLI's group whose own child (`double`) double-forks: the
  last process, in a session of its own, sleeps after both its parents are gone.
Each escapee writes its pid to DIR/<setsid|daemon>.pid once it runs, DIR being
$TINYTOWN_TOWN_ROOT/escapes/round-$TINYTOWN_ROUND; `ready` there means both did. Then
the CLI sleeps for `@hold N` seconds (0 by default) and exits 0. `@spawn NAME` first
runs `tt spawn NAME` (a worker started from inside a round).
Every process keeps `escape_agent.py` in its argv, so a test can find what is left.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

SLEEP = 90


def escapee(out: Path, name: str) -> None:
    (out / f"{name}.tmp").write_text(str(os.getpid()))
    os.replace(out / f"{name}.tmp", out / f"{name}.pid")
    time.sleep(SLEEP)
    os._exit(0)


def main() -> None:
    if len(sys.argv) > 2:
        role, out = sys.argv[1], Path(sys.argv[2])
        if role == "setsid":
            os.setsid()
            if "stubborn" in sys.argv[3:]:
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
            escapee(out, "setsid")
        elif role == "parent":  # stays in the CLI's group, waits for its child, sleeps
            subprocess.run([sys.executable, __file__, "double", str(out)], check=True)
            time.sleep(SLEEP)
        elif role == "double":  # the classic daemon: fork, setsid, fork, parents exit
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    escapee(out, "daemon")
                os._exit(0)
            os._exit(0)
        return
    prompt = sys.stdin.read()
    out = (Path(os.environ["TINYTOWN_TOWN_ROOT"]) / "escapes"
           / f"round-{os.environ['TINYTOWN_ROUND']}")
    out.mkdir(parents=True, exist_ok=True)
    spawn = re.search(r"@spawn (\S+)", prompt)
    if spawn:
        subprocess.run(["tt", "spawn", spawn.group(1)], check=True, stdout=subprocess.DEVNULL)
    extra = ["stubborn"] if "@stubborn" in prompt else []
    subprocess.Popen([sys.executable, __file__, "setsid", str(out), *extra])
    subprocess.Popen([sys.executable, __file__, "parent", str(out)])
    deadline = time.monotonic() + 20
    while not all((out / f"{name}.pid").exists() for name in ("setsid", "daemon")):
        if time.monotonic() > deadline:
            sys.exit("the escapees did not start")
        time.sleep(0.01)
    (out / "ready").write_text(str(os.getpid()))
    hold = re.search(r"@hold ([0-9.]+)", prompt)
    time.sleep(float(hold.group(1)) if hold else 0)
    print("escape agent done")


if __name__ == "__main__":
    main()
