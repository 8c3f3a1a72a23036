"""`tt flower`: the real Flower, on the town's broker, bound to 127.0.0.1 unless told.

Flower binds every interface by default; we always pass --address, and refuse any
address but loopback without basic auth. The credentials go to Flower through its
environment (FLOWER_BASIC_AUTH), never on a command line that `ps` shows. A port that
Flower could not listen on (one in use) is refused before Flower starts.
"""

from __future__ import annotations

import errno
import os
import socket
import sys

from tinytown.core.errors import TinytownError, UsageError
from tinytown.core.settings import Settings

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
    check_listen(address or settings.flower.address, settings.flower.port if port is None
                 else port)
    os.execve(argv[0], argv, env)


def check_listen(address: str, port: int) -> None:
    """Bind `address`:`port` as Flower will (tornado's `bind_sockets`: every address
    the name resolves to, SO_REUSEADDR, IPv6 only on IPv6 sockets) and let go at once;
    raises TinytownError when it could not, e.g. the port is in use."""
    try:
        found = socket.getaddrinfo(address, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0,
                                   socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UsageError(f"cannot serve Flower on {address}: {exc.strerror}") from None
    for family, kind, proto, _, sockaddr in dict.fromkeys(found):
        try:
            sock = socket.socket(family, kind, proto)
        except OSError as exc:
            if exc.errno == errno.EAFNOSUPPORT:
                continue  # no IPv6 here: Flower skips it too
            raise TinytownError(f"cannot serve Flower on {address}: {exc.strerror}") from None
        with sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(sockaddr)
            except OSError as exc:
                if exc.errno == errno.EADDRNOTAVAIL and address == "localhost" and \
                        sockaddr[0] == "::1":
                    continue  # IPv6 half disabled (docker): Flower skips it too
                if exc.errno == errno.EADDRINUSE:
                    raise TinytownError(
                        f"port {port} on {address} is in use: stop what listens there or"
                        " choose another port with --port (or [flower] port)") from None
                raise TinytownError(f"cannot serve Flower on {address} port {port}:"
                                    f" {exc.strerror}") from None
