"""A worker and a CLI that dies as a killed multithreaded program does (Claude Code, node):
its main thread is gone (`ps` shows a zombie) while another thread still runs, and its
shell tool, in a session of its own, stays its child until that last thread ends.

    dying_cli.py worker MARKER LINGER   splits into keeper and worker (tinytown.system.keeper),
        starts the CLI, and SIGKILLs the worker once the CLI's main thread is gone
    dying_cli.py cli MARKER LINGER      the CLI: `sleep MARKER` in a new session, then
        its main thread exits; its last thread exits LINGER seconds later
"""

from __future__ import annotations

import ctypes
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

SYS_EXIT = {"x86_64": 60, "aarch64": 93}  # exit(2) of one thread, not exit_group(2)


def cli(marker: str, linger: str) -> None:
    subprocess.Popen(["sleep", marker], start_new_session=True)

    def last_thread() -> None:
        time.sleep(float(linger))
        os._exit(0)

    threading.Thread(target=last_thread).start()
    ctypes.CDLL(None).syscall(SYS_EXIT[platform.machine()], 0)


def worker(marker: str, linger: str) -> None:
    from tinytown.system.keeper import keep

    keep()  # returns in the worker, a child of the keeper (this process, exec'd)
    proc = subprocess.Popen([sys.executable, __file__, "cli", marker, linger])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the CLI's main thread gone, its last one not
        try:
            state = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            threads = len(os.listdir(f"/proc/{proc.pid}/task"))
        except OSError:
            break
        if state == "Z" and threads > 1:
            break
        time.sleep(0.01)
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    {"worker": worker, "cli": cli}[sys.argv[1]](sys.argv[2], sys.argv[3])
