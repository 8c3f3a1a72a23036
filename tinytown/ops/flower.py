"""`tt flower`: the real Flower, on the town's broker, bound to 127.0.0.1 unless told.

Flower binds every interface by default; we always pass --address, and refuse any
address but loopback without basic auth. The credentials go to Flower through its
environment (FLOWER_BASIC_AUTH), never on a command line that `ps` shows.
"""

from __future__ import annotations

import os
import sys

from tinytown.errors import UsageError
from tinytown.settings import Settings

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def flower_command(
    settings: Settings, port: int | None, address: str | None, basic_auth: str | None
) -> tuple[list[str], dict[str, str]]:
    """The argv and environment that run Flower for the town."""
    address = address or settings.flower.address
    port = settings.flower.port if port is None else port
    basic_auth = basic_auth or settings.flower.basic_auth
    if basic_auth is not None and (":" not in basic_auth or basic_auth.startswith(":")):
        raise UsageError("--basic-auth takes user:password")
    if address not in LOOPBACK and not basic_auth:
        raise UsageError(
            f"refusing to serve Flower on {address} without authentication:"
            " add --basic-auth user:password (or [flower] basic_auth)"
        )
    argv = [
        sys.executable, "-m", "celery", "-A", "tinytown.celery_app", "flower",
        f"--address={address}", f"--port={port}",
    ]
    env = dict(os.environ)
    env["TINYTOWN_TOWN_ROOT"] = str(settings.root)
    if basic_auth:
        env["FLOWER_BASIC_AUTH"] = basic_auth
    return argv, env


def run_flower(
    settings: Settings, port: int | None, address: str | None, basic_auth: str | None
) -> None:
    """Replace this process with Flower (Ctrl-C stops it)."""
    argv, env = flower_command(settings, port, address, basic_auth)
    os.execve(argv[0], argv, env)
