"""The part every model-API stub shares: a threaded HTTP server on 127.0.0.1 (port 0),
a record of every request, a queue of scripted replies, and waiting on conditions.

Standard library only. A protocol stub (anthropic.py, gemini.py) subclasses `StubServer`
and implements `route()`, returning a `Response` (a whole body) or a `Stream` (chunks sent
with chunked transfer encoding as they are produced).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

# headers and query parameters that carry credentials: recorded as "<redacted>"
SECRET_HEADERS = frozenset({"x-api-key", "authorization", "x-goog-api-key", "cookie"})
SECRET_PARAMS = frozenset({"key", "api_key", "access_token"})
REDACTED = "<redacted>"


@dataclass
class Recorded:
    """One request the stub received, and how it was classified and answered."""

    method: str
    path: str  # without the query string
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names; secrets redacted
    body: Any  # the parsed JSON body, or the raw text when it is not JSON, or None
    raw_size: int  # bytes of body received
    kind: str = "other"  # "main" (consumed the script), "side" (answered harmlessly), "other"
    status: int = 0  # the HTTP status answered
    reply: Any = None  # the scripted reply (or a note) that answered it
    usage: dict[str, int] | None = None  # the token usage reported in the answer
    at: float = field(default_factory=time.time)


@dataclass
class Response:
    status: int
    body: Any = None  # dict/list -> JSON; str/bytes as they are
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Stream:
    """A streamed answer (SSE): `chunks` are written one by one, each flushed."""

    chunks: Iterable[bytes]
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "text/event-stream"})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass

    def _serve(self) -> None:
        stub = self.server.stub
        split = urlsplit(self.path)
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            raw = self._read_chunked()
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        for k in SECRET_PARAMS & query.keys():
            query[k] = REDACTED
        headers = {
            k.lower(): (REDACTED if k.lower() in SECRET_HEADERS else v)
            for k, v in self.headers.items()
        }
        rec = Recorded(self.command, split.path, query, headers, body, len(raw))
        try:
            answer = stub.route(rec)
        except Exception as exc:  # a bug in the stub: answer 500 and keep it visible
            answer = Response(500, {"error": f"stub error: {exc!r}"})
            stub.errors.append(f"{rec.method} {rec.path}: {exc!r}")
        rec.status = answer.status
        stub._record(rec)
        try:
            if isinstance(answer, Stream):
                self._send_stream(answer)
            else:
                self._send_whole(answer)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _read_chunked(self) -> bytes:
        out = b""
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                return out
            out += self.rfile.read(size)
            self.rfile.readline()

    def _send_whole(self, answer: Response) -> None:
        payload = answer.body
        ctype = "application/json"
        if isinstance(payload, (dict, list)):
            data = json.dumps(payload).encode()
        elif isinstance(payload, str):
            data, ctype = payload.encode(), "text/plain; charset=utf-8"
        elif payload is None:
            data = b""
        else:
            data = bytes(payload)
        self.send_response(answer.status)
        headers = {"content-type": ctype, **{k.lower(): v for k, v in answer.headers.items()}}
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_stream(self, answer: Stream) -> None:
        self.send_response(answer.status)
        for k, v in answer.headers.items():
            self.send_header(k, v)
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for chunk in answer.chunks:
            if chunk:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    def do_HEAD(self) -> None:
        self.send_response(404)
        self.send_header("content-length", "0")
        self.end_headers()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    stub: StubServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the client hung up (Codex drops its refused WebSocket): no traceback
        super().handle_error(request, client_address)


class StubServer:
    """Base of the model-API stubs. Use as a context manager, or start()/stop()."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.errors: list[str] = []  # exceptions raised inside the stub (should stay empty)
        self._script: deque[Any] = deque()
        self._cond = threading.Condition()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> StubServer:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.stub = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> StubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "stub not started"
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- the script ---------------------------------------------------------------------
    def push(self, *replies: Any) -> None:
        """Append scripted replies; each answers the next main request(s)."""
        with self._cond:
            self._script.extend(replies)

    def clear_script(self) -> None:
        """Drop the replies not used yet."""
        with self._cond:
            self._script.clear()

    def pending(self) -> int:
        with self._cond:
            return len(self._script)

    def _next_reply(self) -> Any | None:
        """The reply for a main request: the head of the queue (kept there while its
        `times` allows more, so one error reply can answer every retry)."""
        with self._cond:
            if not self._script:
                return None
            reply = self._script[0]
            if reply.times is None:  # forever
                return reply
            reply._left = (reply._left or reply.times) - 1
            if reply._left <= 0:
                self._script.popleft()
            return reply

    # -- recording and waiting ----------------------------------------------------------
    def _record(self, rec: Recorded) -> None:
        with self._cond:
            self.requests.append(rec)
            self._cond.notify_all()

    def route(self, rec: Recorded) -> Response | Stream:
        raise NotImplementedError

    def of_kind(self, kind: str) -> list[Recorded]:
        with self._cond:
            return [r for r in self.requests if r.kind == kind]

    @property
    def main_requests(self) -> list[Recorded]:
        return self.of_kind("main")

    def wait_for(
        self, predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition"
    ) -> Any:
        """Wait until predicate() is truthy (re-checked on every request); fail after timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = predicate()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"stub: timed out after {timeout}s waiting for {what}")
                self._cond.wait(min(left, 0.5))

    def summary(self) -> str:
        """One line per request, for assertion messages."""
        with self._cond:
            return "\n".join(
                f"{r.kind:5} {r.status} {r.method} {r.path} ({r.raw_size} bytes)"
                for r in self.requests
            )


# -- scripted replies (each protocol stub renders them in its own wire format) ------------
@dataclass
class Text:
    """A final answer: the model says `text` and ends its turn."""

    text: str
    usage: dict[str, int] | None = None  # overrides the stub's default usage
    times: int | None = 1
    _left: int = field(default=0, repr=False)


@dataclass
class ToolCall:
    """A call to the CLI's shell tool running `command` (then the CLI sends the result)."""

    command: str
    text: str = ""  # optional text said before the call
    name: str | None = None  # tool name; None = the protocol's shell tool
    args: dict[str, Any] | None = None  # full arguments; None = built from `command`
    usage: dict[str, int] | None = None
    times: int | None = 1
    _left: int = field(default=0, repr=False)


@dataclass
class ApiError:
    """An HTTP error with the provider's error body. `times` requests get it (retries
    included); None = every request from then on."""

    status: int
    message: str = "stub error"
    type: str | None = None  # the provider's error type/status; None = derived from status
    headers: dict[str, str] = field(default_factory=dict)  # e.g. {"retry-after": "0"}
    body: Any = None  # the exact body to send instead of the provider's shape
    times: int | None = 1
    _left: int = field(default=0, repr=False)


Reply = Text | ToolCall | ApiError


def estimate_tokens(value: Any) -> int:
    """A rough token count (4 characters a token) of a JSON-able value."""
    return max(1, len(json.dumps(value, ensure_ascii=False)) // 4)


def collect_texts(value: Any, out: list[str]) -> None:
    """Every string in a JSON-able value, depth first, appended to `out`."""
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, dict):
        for v in value.values():
            collect_texts(v, out)
    elif isinstance(value, list):
        for v in value:
            collect_texts(v, out)


def sse(event: str | None, data: Any) -> bytes:
    """One server-sent event."""
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()


def chunked_text(text: str, size: int) -> Iterator[str]:
    """`text` in pieces of `size` characters (at least one piece)."""
    if not text:
        yield ""
        return
    for i in range(0, len(text), size):
        yield text[i : i + size]
