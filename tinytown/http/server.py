"""Running the app: uvicorn on one socket we bind ourselves, TLS when given a
certificate.

Binding first turns a port in use (or a certificate that does not load) into one line
from `tt`, not a uvicorn traceback, and lets `--port 0` pick a free port that the
start-up line names. Logs go to stderr; the access log has the request line and status,
never a header, so no key reaches it (keys are only ever sent in a header).
"""

from __future__ import annotations

import errno
import socket
import ssl
import sys
from typing import Any

import uvicorn

from tinytown.core.errors import TinytownError, UsageError
from tinytown.http.app import create_app
from tinytown.ops.facade import Town

GRACE_SECS = 3  # open event streams are cut after this at shutdown

LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "default": {"()": "uvicorn.logging.DefaultFormatter",
                    "fmt": "%(asctime)s %(levelprefix)s %(message)s", "use_colors": False},
        "access": {"()": "uvicorn.logging.AccessFormatter", "use_colors": False,
                   "fmt": '%(asctime)s %(levelprefix)s %(client_addr)s - "%(request_line)s"'
                          " %(status_code)s"},
    },
    "handlers": {
        "default": {"formatter": "default", "class": "logging.StreamHandler",
                    "stream": "ext://sys.stderr"},
        "access": {"formatter": "access", "class": "logging.StreamHandler",
                   "stream": "ext://sys.stderr"},
    },
    "loggers": {
        "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
        "uvicorn.error": {"level": "INFO"},
        "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        "tinytown.http": {"handlers": ["default"], "level": "INFO", "propagate": False},
    },
    # the rest (the MCP SDK's loggers among them): warnings, in the same format
    "root": {"handlers": ["default"], "level": "WARNING"},
}


def serve(town: Town, address: str, port: int, tls_cert: str | None = None,
          tls_key: str | None = None) -> None:
    """Serve the town until SIGINT or SIGTERM."""
    if (tls_cert is None) != (tls_key is None):
        raise UsageError("--tls-cert and --tls-key go together")
    town.check_serve_address(address)
    config = uvicorn.Config(
        create_app(town), log_config=LOG_CONFIG, ssl_certfile=tls_cert, ssl_keyfile=tls_key,
        proxy_headers=False, server_header=False, lifespan="on",  # /mcp's task group
        timeout_graceful_shutdown=GRACE_SECS)
    try:
        config.load()  # the TLS context too: a bad certificate or key is said here
    except (ssl.SSLError, OSError) as exc:
        raise UsageError(f"cannot use --tls-cert {tls_cert} / --tls-key {tls_key}:"
                         f" {getattr(exc, 'strerror', None) or exc}") from None
    sock = bind(address, port)
    host, bound = sock.getsockname()[:2]
    scheme = "https" if tls_cert else "http"
    shown = f"[{host}]" if ":" in host else host
    print(f"tt: serving town {town.name!r} at {scheme}://{shown}:{bound} (Ctrl-C stops)",
          file=sys.stderr, flush=True)
    if not _has_keys(town):
        print("tt: warning: the town has no API key yet: every request but /healthz and"
              " /readyz is refused until `tt auth add NAME --scope read`", file=sys.stderr,
              flush=True)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()


def _has_keys(town: Town) -> bool:
    try:
        return bool(town.api_keys())
    except TinytownError:  # Redis is not there yet: /readyz will say so
        return True


def bind(address: str, port: int) -> socket.socket:
    """A listening socket on `address`:`port` (its first address, for a name)."""
    try:
        family, kind, proto, _, sockaddr = socket.getaddrinfo(
            address, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise UsageError(f"cannot serve on {address}: {exc.strerror}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise TinytownError(f"port {port} on {address} is in use: stop what listens there"
                                " or choose another with --port") from None
        raise TinytownError(f"cannot serve on {address} port {port}: {exc.strerror}") from None
    return sock
