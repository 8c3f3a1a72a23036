"""`tt` (and `python -m tinytown`): the CLI's entry point, tuned to start fast.

Two things cost a short `tt` call more than its work (scripts/bench, `cli` phase):
- the garbage collector, run over and over while redis-py, click and the models are
  imported, though nothing is garbage yet (about 10 ms a call). It is off while the
  command starts and back on after a second, for the commands that keep running;
- the interpreter's teardown of every imported module (about 30 ms). Once the
  command has returned and its output is flushed, the process ends at once.
"""

from __future__ import annotations

import gc
import os
import sys
import threading


def main() -> None:
    gc.disable()
    timer = threading.Timer(1.0, gc.enable)
    timer.daemon = True
    timer.start()
    from tinytown.cli.main import main as cli_main

    try:
        cli_main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, int | None):
            print(exc.code, file=sys.stderr)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        code = code or 1
    os._exit(code)


if __name__ == "__main__":
    main()
