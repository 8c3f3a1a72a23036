"""Town data is private to its user: folders 0700, files 0600.

Everything a town writes (the AOF and RDB, logs, prompts, snapshots) can hold task
text and agent output. `.tt/` is made 0700, the processes that write into it run
with umask 077 (`go_private`), and a socket folder outside the town (`/tmp/tinytown-<uid>/`, when
`.tt/redis.sock` would be too long for AF_UNIX) is used only if it is ours alone.
"""

from __future__ import annotations

import os
import stat
from collections.abc import MutableMapping
from pathlib import Path

from tinytown.core.errors import ConfigError

UMASK = 0o077  # what a town's processes create is theirs alone
# The user's own umask, recorded by whoever launches a town's process (`tt spawn`, `tt
# restart`, a host daemon started by hand): the agent CLI runs with it, so the files an
# agent writes in the user's project are the user's usual mode, not 0600.
USER_UMASK_ENV = "TINYTOWN_USER_UMASK"


def current_umask() -> int:
    """This process's umask, read without changing it (Linux's /proc; elsewhere a set
    and a restore)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(UMASK)
    os.umask(mask)
    return mask


def remember_user_umask(env: MutableMapping[str, str]) -> None:
    """Record this process's umask in `env` as the user's, unless one is recorded."""
    env.setdefault(USER_UMASK_ENV, f"{current_umask():03o}")


def go_private() -> None:
    """Umask 077 for a town's process (its logs and prompts hold task text), the
    user's own umask kept in the environment for the agent CLIs it starts."""
    remember_user_umask(os.environ)
    os.umask(UMASK)


def user_umask() -> int:
    """The user's umask as recorded (`USER_UMASK_ENV`); this process's if none is."""
    value = os.environ.get(USER_UMASK_ENV, "")
    try:
        mask = int(value, 8)
    except ValueError:
        return current_umask()
    return mask if 0 <= mask <= 0o777 else current_umask()


def private_dir(path: Path) -> Path:
    """Create the folder 0700 (missing parents too: a town's folders nest, as in
    `.tt/logs/<agent>`), or make an existing one of ours so."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
    info = path.stat()
    if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & 0o077:
        path.chmod(0o700)
    return path


def owned_dir(path: Path) -> Path:
    """A folder in a shared place (/tmp) for this user alone: created 0700 if absent;
    refused (ConfigError) if it is a symlink, not a folder, someone else's, or open to
    others, since whoever owns it could answer in the town's Redis's place."""
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    info = path.lstat()
    problem = (
        "is a symbolic link" if stat.S_ISLNK(info.st_mode)
        else "is not a folder" if not stat.S_ISDIR(info.st_mode)
        else f"belongs to uid {info.st_uid}" if info.st_uid != os.getuid()
        else f"has mode {stat.S_IMODE(info.st_mode):o}, open to others"
        if stat.S_IMODE(info.st_mode) & 0o077 else None
    )
    if problem:
        raise ConfigError(
            f"{path} {problem}: refusing to put the town's Redis socket there;"
            " remove it, or use a shorter town path or [redis] url"
        )
    return path


def private_file(path: Path) -> int:
    """Open `path` for writing, created (or truncated) 0600; returns the descriptor."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
