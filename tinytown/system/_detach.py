"""Start a command fully detached: `python -m tinytown.system._detach LOG CMD...`.

The caller waits for this short-lived process, which starts CMD in a new session
(stdin from /dev/null, output appended to LOG) and prints its pid. CMD is then
nobody's child but init's, so a long-lived caller (a Python program using the API)
collects no zombies. Standard library only: it must start fast.
"""

import os
import subprocess
import sys


def main() -> None:
    log_path, argv = sys.argv[1], sys.argv[2:]
    # umask 077: the process and what it writes (logs, prompts) are its user's alone
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with open(fd, "ab") as log:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True, umask=0o077,
        )
    print(proc.pid)
    proc.returncode = 0  # not ours to wait for: init reaps it once we exit


if __name__ == "__main__":
    main()
