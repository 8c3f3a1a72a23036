"""A scriptable check command for the gate tests (run by the worker as an argv).

    check_gate.py pass-after N COUNT MARKER   fail (exit 1, printing MARKER and the run's
                                             number) while this is run N times or fewer
    check_gate.py wait FLAG STARTED           append its pid to STARTED (its run number N is
                                             the line's), then wait until FLAG.N exists;
                                             exit with the number in it
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def main() -> None:
    mode, *args = sys.argv[1:]
    if mode == "pass-after":
        limit, count, marker = int(args[0]), Path(args[1]), args[2]
        runs = int(count.read_text()) + 1 if count.exists() else 1
        count.write_text(str(runs))
        print(f"check run {runs} in {os.getcwd()}")
        if runs <= limit:
            print(f"{marker}: assertion failed in run {runs}")
            sys.exit(1)
        print("all good")
        return
    flag, started = Path(args[0]), Path(args[1])
    with started.open("a") as f:
        f.write(f"{os.getpid()}\n")
    mine = flag.with_name(f"{flag.name}.{len(started.read_text().split())}")
    while not mine.exists():
        time.sleep(0.05)
    sys.exit(int(mine.read_text().strip() or 0))


if __name__ == "__main__":
    main()
