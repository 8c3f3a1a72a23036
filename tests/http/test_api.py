"""`tt serve`: the REST API of a real town with real workers, over real HTTP.

Each test starts the real `tt serve` process (`--port 0`: the start-up line names the
port) against a test town whose agent `alice` has a real worker process running the
fake agent CLI, and a supervisor. Keys are made with the real `tt auth add`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import TT, TownFixture, one_line_error, start_redis, stop_redis, wait_until
from tinytown.core import keys
from tinytown.core.models import TaskState

SERVING = re.compile(r"serving town '[^']*' at (https?://\S+) ")
KEY = re.compile(r"^tt_[A-Za-z0-9_-]{43}$")
KEY_NAMES = {"read": "reader", "write": "writer", "admin": "boss"}


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    base: str
    log: Path

    def stop(self, within: float = 10) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(within)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"tt serve outlived SIGTERM by {within}s") from None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def start_server(town: TownFixture, *args: str) -> Server:
    """`tt serve --port 0 ARGS` in the town's folder, once it answers /healthz."""
    log = town.root / f"serve-{time.monotonic_ns()}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([TT, "serve", "--port", "0", *args], cwd=town.root,
                                env={**os.environ, "FAKE_AGENT_DIR": str(town.records)},
                                stdout=out, stderr=subprocess.STDOUT)

    def started() -> str | None:
        if proc.poll() is not None:
            raise AssertionError(f"tt serve exited {proc.returncode}: {log.read_text()}")
        found = SERVING.search(log.read_text())
        return found.group(1) if found else None

    base = wait_until(started, 30, "tt serve to start")
    server = Server(proc, base, log)
    return server


def add_key(town: TownFixture, name: str, scope: str) -> str:
    r = town.tt("auth", "add", name, "--scope", scope)
    assert r.code == 0, r
    key = r.out.strip()
    assert KEY.match(key), r.out
    return key


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class Served:
    """A town with alice (a real worker), quiet (recorded, no worker), a supervisor, a
    key of each scope, and `tt serve` on it."""

    town: TownFixture
    server: Server
    keys: dict[str, str]
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, scope: str | None = "read", **kw: Any) -> httpx.Client:
        headers = bearer(self.keys[scope]) if scope else {}
        client = httpx.Client(base_url=self.server.base, headers=headers,
                              **{"timeout": 30, **kw})
        self.clients.append(client)
        return client

    def get(self, path: str, scope: str | None = "read", **kw: Any) -> httpx.Response:
        return self.client(scope).get(path, **kw)

    def post(self, path: str, body: Any = None, scope: str | None = "write",
             **kw: Any) -> httpx.Response:
        return self.client(scope).post(path, json=body, **kw)

    def close(self) -> None:
        for client in self.clients:
            client.close()


@pytest.fixture
def served(town: TownFixture, supervisor: subprocess.Popen[bytes]) -> Iterator[Served]:
    keys_made = {scope: add_key(town, name, scope) for scope, name in KEY_NAMES.items()}
    assert town.tt("spawn", "alice").code == 0
    assert town.tt("spawn", "quiet", "--no-start").code == 0
    town.wait_state("alice", "idle")
    server = start_server(town)
    served = Served(town, server, keys_made)
    try:
        yield served
    finally:
        served.close()
        server.stop()
    log = server.log_text()
    for key in keys_made.values():
        assert key not in log, "an API key reached the server's log"
    assert "Traceback" not in log, log


def error_of(r: httpx.Response, status: int) -> str:
    """The response is `{"error": "<one line>"}` with `status`."""
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert list(body) == ["error"], body
    assert "\n" not in body["error"] and "Traceback" not in body["error"]
    return str(body["error"])


# --- tt auth ---------------------------------------------------------------------------


def test_auth_add_prints_the_key_once_and_stores_only_its_digest(town: TownFixture) -> None:
    r = town.tt("auth", "add", "ci", "--scope", "write")
    assert r.code == 0, r
    key = r.out.strip()
    assert KEY.match(key) and r.out.count("\n") == 1
    assert "not shown again" in r.err and key not in r.err
    r_ = town.town.redis
    stored = r_.hgetall(keys.api_keys(town.name))
    assert len(stored) == 1 and key not in json.dumps(stored)
    [(digest, record)] = stored.items()
    import hashlib

    assert digest == hashlib.sha256(key.encode()).hexdigest()
    assert json.loads(record)["name"] == "ci" and json.loads(record)["scope"] == "write"
    listed = json.loads(town.tt("auth", "list", "--json").out)
    assert listed == [{"name": "ci", "scope": "write", "created_at": listed[0]["created_at"],
                       "last_used_at": None}]
    table = town.tt("auth", "list").out
    assert "ci" in table and "write" in table and "never" in table and key not in table

    assert "already exists" in one_line_error(town.tt("auth", "add", "ci"), 1)
    assert "invalid key name" in one_line_error(town.tt("auth", "add", "a b"), 2)
    assert town.tt("auth", "add", "x", "--scope", "root").code == 2

    # a snapshot leaves keys out: restoring it never brings a revoked key back
    snapshot = town.root / "snap.jsonl"
    assert town.tt("save", str(snapshot)).code == 0
    assert "apikeys" not in snapshot.read_text()

    r = town.tt("auth", "revoke", "ci")
    assert r.code == 0 and "revoked key 'ci'" in r.out
    assert not r_.exists(keys.api_keys(town.name))
    assert "no API keys" in town.tt("auth", "list").out
    assert "no API key named 'ci'" in one_line_error(town.tt("auth", "revoke", "ci"), 1)


def test_tt_commands_other_than_serve_load_no_web_stack(town: TownFixture) -> None:
    """`tt send`, `tt list`, `tt auth list` stay fast: no FastAPI, pydantic, uvicorn,
    starlette, prometheus-client or the MCP SDK (`tt serve` and `tt mcp` only)."""
    town.tt("spawn", "quiet", "--no-start")
    probe = ("import sys\nfrom tinytown.cli.main import main\ntry:\n    main(sys.argv[1:])\n"
             "except SystemExit:\n    pass\n"
             "heavy = sorted(m for m in ('fastapi', 'pydantic', 'uvicorn', 'starlette',"
             " 'prometheus_client', 'mcp', 'mcp_types') if m in sys.modules)\n"
             "print('HEAVY', heavy, file=sys.stderr)\n")
    for args in (["send", "quiet", "hello"], ["list"], ["auth", "list"],
                 ["auth", "add", "k", "--scope", "read"]):
        proc = subprocess.run([sys.executable, "-c", probe, *args], cwd=town.root,
                              capture_output=True, text=True, timeout=60)
        assert "HEAVY []" in proc.stderr, (args, proc.stderr)


# --- serving: addresses, ports, TLS ------------------------------------------------------


def test_serve_refuses_other_addresses_until_a_key_exists(town: TownFixture) -> None:
    r = town.tt("serve", "--address", "0.0.0.0", "--port", "0")
    line = one_line_error(r, 1)
    assert "refusing to serve on 0.0.0.0 without an API key" in line
    assert "refusing" in one_line_error(town.tt("serve", "--address", "example.org"), 1)
    key = add_key(town, "remote", "read")
    server = start_server(town, "--address", "0.0.0.0")
    try:
        port = server.base.rsplit(":", 1)[1]
        assert server.base.startswith("http://0.0.0.0:")
        with httpx.Client(timeout=10) as client:  # reached on loopback only
            assert client.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
            r2 = client.get(f"http://127.0.0.1:{port}/v1/agents", headers=bearer(key))
            assert r2.status_code == 200 and r2.json() == []
    finally:
        server.stop()


def test_serve_says_in_one_line_what_is_wrong(town: TownFixture, tmp_path: Path) -> None:
    assert "go together" in one_line_error(town.tt("serve", "--tls-cert", "c.pem"), 2)
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    line = one_line_error(town.tt("serve", "--tls-cert", str(bad), "--tls-key", str(bad)), 2)
    assert "cannot use --tls-cert" in line
    server = start_server(town)
    try:
        wait_until(lambda: "no API key yet" in server.log_text(), 10, "the warning")
        port = server.base.rsplit(":", 1)[1]
        line = one_line_error(town.tt("serve", "--port", port), 1)
        assert f"port {port} on 127.0.0.1 is in use" in line
    finally:
        server.stop()


def self_signed(folder: Path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed: no self-signed certificate to serve with")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def test_tls_with_a_self_signed_certificate(town: TownFixture, tmp_path: Path) -> None:
    cert, key_file = self_signed(tmp_path)
    key = add_key(town, "tls", "read")
    server = start_server(town, "--tls-cert", str(cert), "--tls-key", str(key_file))
    try:
        assert server.base.startswith("https://127.0.0.1:")
        trusting = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(base_url=server.base, verify=trusting, timeout=10) as client:
            assert client.get("/healthz").status_code == 200
            assert client.get("/v1/agents", headers=bearer(key)).json() == []
            assert client.get("/v1/agents").status_code == 401
        with httpx.Client(base_url=server.base, timeout=10) as client:  # the system's CAs
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                client.get("/healthz")
        plain = server.base.replace("https://", "http://")
        with httpx.Client(base_url=plain, timeout=10) as client:  # no TLS: no answer
            with pytest.raises(httpx.HTTPError):
                client.get("/healthz")
    finally:
        server.stop()


# --- agents --------------------------------------------------------------------------


def test_agents_list_show_and_errors(served: Served) -> None:
    town = served.town.town
    listed = served.get("/v1/agents").json()
    assert [a["name"] for a in listed] == ["alice", "quiet"]
    quiet = served.get("/v1/agents/quiet").json()
    assert quiet == town.resolve("quiet").to_wire()  # exactly the wire format
    assert served.get(f"/v1/agents/{quiet['id'][:8]}").json()["name"] == "quiet"
    assert served.get("/v1/agents/supervisor").json()["agent_type"] == "supervisor"
    assert "no agent 'nobody'" in error_of(served.get("/v1/agents/nobody"), 404)
    for action in ("interrupt", "resume", "close"):
        error_of(served.post(f"/v1/agents/nobody/{action}"), 404)
    for action in ("kill", "restart"):
        error_of(served.post(f"/v1/agents/nobody/{action}", scope="admin"), 404)
    assert "starting" in error_of(served.post("/v1/agents/quiet/resume"), 409)


def test_spawn_and_the_control_plane_over_http(served: Served) -> None:
    town = served.town
    r = served.post("/v1/agents", {"name": "bob"}, scope="admin")
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "bob" and r.json()["state"] == "starting"
    town.wait_state("bob", "idle")
    assert "already exists" in error_of(served.post("/v1/agents", {"name": "bob"},
                                                    scope="admin"), 409)
    assert "invalid agent name" in error_of(
        served.post("/v1/agents", {"name": "no spaces"}, scope="admin"), 422)
    assert "unknown role" in error_of(
        served.post("/v1/agents", {"name": "carl", "role": "nope"}, scope="admin"), 422)
    assert "max_rounds" in error_of(
        served.post("/v1/agents", {"name": "carl", "max_rounds": 0}, scope="admin"), 422)
    assert "this needs admin" in error_of(served.post("/v1/agents", {"name": "carl"}), 403)
    assert town.town.store.name_owner("carl") is None

    assert served.post("/v1/agents/bob/interrupt").json()["state"] == "paused"
    assert "paused" in error_of(served.post("/v1/agents/bob/interrupt"), 409)
    assert served.post("/v1/agents/bob/resume").json()["state"] == "idle"
    assert served.post("/v1/agents/bob/close").json()["state"] == "draining"
    town.wait_state("bob", "cold")
    assert "cold" in error_of(served.post("/v1/agents/bob/close"), 409)
    assert "can be restarted" in error_of(served.post("/v1/agents/alice/restart",
                                                      scope="admin"), 409)
    error_of(served.post("/v1/agents/prune", {}), 403)
    assert "this needs admin" in error_of(served.post("/v1/agents/bob/restart"), 403)
    assert served.post("/v1/agents/bob/restart", scope="admin").json()["state"] == "starting"
    town.wait_state("bob", "idle")
    killed = served.post("/v1/agents/bob/kill", scope="admin")
    assert killed.status_code == 200 and killed.json()["name"] == "bob"
    town.wait_state("bob", "stopped")
    assert "already stopped" in error_of(served.post("/v1/agents/bob/kill", scope="admin"), 409)
    report = served.post("/v1/agents/prune", {}, scope="admin").json()
    assert report["pruned"] == ["bob"]
    assert {k["name"] for k in report["kept"]} == {"alice", "quiet"}
    error_of(served.get("/v1/agents/bob"), 404)


# --- tasks, messages, backlog -----------------------------------------------------------


def test_tasks_assign_wait_list_and_finish(served: Served) -> None:
    town = served.town
    r = served.post("/v1/tasks", {"agent": "alice", "description": "over http",
                                  "tags": ["api"]})
    assert r.status_code == 201, r.text
    task = r.json()
    assert task["assigned_to"] == town.town.resolve("alice").id and task["tags"] == ["api"]
    done = served.get(f"/v1/tasks/{task['id']}/wait", params={"timeout": 30}).json()
    assert done["state"] == "completed" and "fake agent alice" in done["result"]
    assert served.get(f"/v1/tasks/{task['id'][:8]}").json() == \
        town.town.task(task["id"]).to_wire()
    listed = served.get("/v1/tasks", params={"state": "completed", "agent": "alice"}).json()
    assert [t["id"] for t in listed] == [task["id"]]
    assert served.get("/v1/tasks", params={"state": "assigned"}).json() == []
    error_of(served.get("/v1/tasks", params={"state": "bogus"}), 422)
    error_of(served.get("/v1/tasks", params={"agent": "nobody"}), 404)
    error_of(served.get("/v1/tasks/ffffffff"), 404)
    error_of(served.get("/v1/tasks/not-hex"), 404)
    error_of(served.get("/v1/tasks/ffffffff/wait"), 404)

    waiting = served.post("/v1/tasks", {"agent": "quiet", "description": "no worker"}).json()
    line = error_of(served.get(f"/v1/tasks/{waiting['id']}/wait",
                               params={"timeout": 0.3}), 408)
    assert "still assigned after 0.3s" in line
    error_of(served.get(f"/v1/tasks/{waiting['id']}/wait", params={"timeout": -1}), 422)
    finished = served.post(f"/v1/tasks/{waiting['id']}/complete", {"result": "by hand"})
    assert finished.json()["state"] == "completed" and finished.json()["result"] == "by hand"
    assert "completed" in error_of(served.post(f"/v1/tasks/{waiting['id']}/complete"), 409)
    second = served.post("/v1/tasks", {"agent": "quiet", "description": "to fail"}).json()
    failed = served.post(f"/v1/tasks/{second['id']}/fail", {"error": "no"}).json()
    assert failed["state"] == "failed" and failed["result"] == "no"
    third = served.post("/v1/tasks", {"agent": "quiet", "description": "to cancel",
                                      "urgent": True}).json()
    assert served.post(f"/v1/tasks/{third['id']}/cancel").json()["state"] == "cancelled"
    assert "cancelled" in error_of(served.post(f"/v1/tasks/{third['id']}/fail"), 409)
    assert "failed" in error_of(served.post(f"/v1/tasks/{second['id']}/cancel"), 409)
    for verb in ("complete", "fail", "cancel"):
        error_of(served.post(f"/v1/tasks/ffffffff/{verb}"), 404)
    assert town.town.store.peek_inbox(town.town.resolve("quiet").id)[0].type == "task_assign"
    town.town.agent("quiet").kill()  # no worker: stopped at once; its task waits a restart
    town.wait_state("quiet", "stopped")
    started = time.monotonic()
    stuck = served.post("/v1/tasks", {"agent": "quiet", "description": "later"}).json()
    line = error_of(served.get(f"/v1/tasks/{stuck['id']}/wait", params={"timeout": 20}), 409)
    assert "tt restart quiet" in line and time.monotonic() - started < 10


def test_assign_errors_and_roles(served: Served) -> None:
    town = served.town.town
    queued = served.post("/v1/tasks", {"role": "reviewer", "description": "review it"})
    assert queued.status_code == 201 and queued.json()["state"] == "pending"
    before = len(town.list_tasks())
    assert "give `agent` or `role`" in error_of(
        served.post("/v1/tasks", {"description": "whose?"}), 422)
    error_of(served.post("/v1/tasks", {"description": "x", "agent": "alice",
                                       "role": "reviewer"}), 422)
    assert "unknown role" in error_of(
        served.post("/v1/tasks", {"description": "x", "role": "nope"}), 422)
    error_of(served.post("/v1/tasks", {"description": "x", "agent": "nobody"}), 404)
    error_of(served.post("/v1/tasks", {"description": "", "agent": "alice"}), 422)
    line = error_of(served.post("/v1/tasks", {"description": "x", "agent": "alice",
                                              "colour": "red"}), 422)
    assert "colour" in line
    error_of(served.post("/v1/tasks", {"description": "x", "agent": "alice",
                                       "parent_id": "ffffffff"}), 404)
    error_of(served.client("write").post("/v1/tasks", content=b"{not json",
                                         headers={"content-type": "application/json"}), 422)
    big = "\u00e9" * 600_000  # 1.2 MB of UTF-8: over the limit, under the character cap
    assert "limit" in error_of(served.post("/v1/tasks", {"description": big,
                                                         "agent": "quiet"}), 413)
    assert len(town.list_tasks()) == before  # nothing written by a refused request


def test_messages_send_and_inbox(served: Served) -> None:
    town = served.town.town
    quiet = town.resolve("quiet")
    r = served.post("/v1/agents/quiet/inbox", {"type": "query", "question": "ready?",
                                               "priority": "high"})
    assert r.status_code == 201, r.text
    sent = r.json()
    assert sent["type"] == "query" and sent["question"] == "ready?"
    assert sent["from"] == keys.SUPERVISOR_ID and sent["to"] == quiet.id
    assert sent["priority"] == "high"
    inbox = served.get("/v1/agents/quiet/inbox").json()
    assert inbox == [m.to_wire() for m in town.store.peek_inbox(quiet.id)]
    assert inbox[0] == sent
    rejected = served.post("/v1/agents/quiet/inbox", {
        "type": "confirmation", "ack_type": {"type": "rejected", "reason": "not now"},
        "from": "alice", "correlation_id": sent["id"]}).json()
    assert rejected["ack_type"] == {"type": "rejected", "reason": "not now"}
    assert rejected["from"] == town.resolve("alice").id
    assert rejected["correlation_id"] == sent["id"]
    custom = served.post("/v1/agents/quiet/inbox", {"type": "custom", "kind": "deploy",
                                                    "payload": "{\"env\": \"prod\"}"})
    assert custom.json()["payload"] == "{\"env\": \"prod\"}"
    error_of(served.post("/v1/agents/nobody/inbox", {"type": "ping"}), 404)
    error_of(served.post("/v1/agents/quiet/inbox", {"type": "task_done"}), 422)
    error_of(served.post("/v1/agents/quiet/inbox", {"type": "task"}), 422)
    error_of(served.post("/v1/agents/quiet/inbox", {"type": "ping", "from": "nobody"}), 404)
    big = "\u00e9" * 600_000
    error_of(served.post("/v1/agents/quiet/inbox", {"type": "task", "description": big}), 413)
    huge = b"[" + b" " * (9 * 1024 * 1024) + b"]"  # read by no one, not even for a key
    with httpx.Client(base_url=served.server.base, timeout=30) as anonymous:
        assert "over 8 MiB" in error_of(anonymous.post(
            "/v1/agents/quiet/inbox", content=huge,
            headers={"content-type": "application/json"}), 413)

    def chunked() -> Iterator[bytes]:  # no Content-Length: counted as it comes
        yield b"["
        for _ in range(9):
            yield b" " * (1024 * 1024)
        yield b"]"

    assert "over 8 MiB" in error_of(served.client("write").post(
        "/v1/agents/quiet/inbox", content=chunked(),
        headers={"content-type": "application/json"}), 413)
    assert len(town.store.peek_inbox(quiet.id)) == 3
    assert served.get("/v1/agents/supervisor/inbox").json() == []
    error_of(served.get("/v1/agents/nobody/inbox"), 404)


def test_backlog_add_list_claim_remove(served: Served) -> None:
    town = served.town
    r = served.post("/v1/backlog", {"description": "later", "tags": ["b"]})
    assert r.status_code == 201 and r.json()["state"] == "pending"
    task_id = r.json()["id"]
    assert [t["id"] for t in served.get("/v1/backlog").json()] == [task_id]
    error_of(served.post(f"/v1/backlog/{task_id}/claim", {"agent": "nobody"}), 404)
    assert [t["id"] for t in served.get("/v1/backlog").json()] == [task_id]
    claimed = served.post(f"/v1/backlog/{task_id[:8]}/claim", {"agent": "alice"}).json()
    assert claimed["assigned_to"] == town.town.resolve("alice").id
    town.wait_task(task_id, TaskState.COMPLETED)
    error_of(served.post(f"/v1/backlog/{task_id}/claim", {"agent": "alice"}), 404)
    error_of(served.post("/v1/backlog", {"description": "x", "role": "nope"}), 422)
    other = served.post("/v1/backlog", {"description": "never mind"}).json()
    removed = served.client("write").delete(f"/v1/backlog/{other['id']}")
    assert removed.json()["state"] == "cancelled"
    error_of(served.client("write").delete(f"/v1/backlog/{other['id']}"), 404)
    assert served.get("/v1/backlog").json() == []


def test_events_list_and_usage(served: Served) -> None:
    task = served.post("/v1/tasks", {"agent": "alice", "description": "count me"}).json()
    served.town.wait_task(task["id"], TaskState.COMPLETED)
    events = served.get("/v1/events", params={"count": 50, "agent": "alice"}).json()
    alice = served.town.town.resolve("alice").id
    assert events and all(e["agent"] == alice for e in events)
    assert {"spawned", "assigned", "state"} <= {e["kind"] for e in events}
    error_of(served.get("/v1/events", params={"count": 0}), 422)
    error_of(served.get("/v1/events", params={"agent": "nobody"}), 404)
    report = served.get("/v1/usage").json()
    assert report["by"] == "agent" and report["total"]["rounds"] >= 1
    assert [row["name"] for row in report["rows"]] == ["alice"]
    by_task = served.get("/v1/usage", params={"by": "task", "task": task["id"]}).json()
    assert [row["key"] for row in by_task["rows"]] == [task["id"]]
    error_of(served.get("/v1/usage", params={"by": "week"}), 422)
    error_of(served.get("/v1/usage", params={"agent": "nobody"}), 404)
    error_of(served.get("/v1/usage", params={"since": "yesterday-ish"}), 422)


def test_numbers_are_numbers_and_unknown_is_null(served: Served) -> None:
    """The event stream keeps text (`"round": "2"`, `"cost_usd": ""`) and an unknown
    cost was `cost_usd: 0.0`: the API gives numbers, and null for what is not known,
    as its OpenAPI document says, for entries written before as well."""
    task = served.post("/v1/tasks", {"agent": "alice", "description": "count me"}).json()
    served.town.wait_task(task["id"], TaskState.COMPLETED)  # its CLI reports no usage
    report = served.get("/v1/usage").json()
    assert report["total"]["rounds"] >= 1
    assert report["total"]["cost_usd"] is None and report["total"]["cost"] == "unknown"
    assert report["total"]["cost_known"] is False
    store = served.town.town.store
    alice = served.town.town.resolve("alice").id
    store.add_event("round", alice, name="alice", round=7, input_tokens=12,  # no price
                    cached_input_tokens=3, output_tokens=5, cost_usd="")
    store.add_event("round", alice, name="alice", round=8, input_tokens=1,
                    cached_input_tokens=0, output_tokens=2, cost_usd="0.0012")
    events = served.get("/v1/events", params={"count": 100, "agent": "alice"}).json()
    rounds = [e for e in events if e["kind"] == "round"]
    assert rounds[0]["round"] == 1 and rounds[0]["cost_usd"] is None  # "unknown" stored
    assert [(e["round"], e["input_tokens"], e["output_tokens"], e["cost_usd"])
            for e in rounds[-2:]] == [(7, 12, 5, None), (8, 1, 2, 0.0012)]
    state = next(e for e in events if e["kind"] == "state")
    assert "round" not in state and "cost_usd" not in state  # absent, not null
    schemas = served.get("/openapi.json").json()["components"]["schemas"]
    event = schemas["Event"]["properties"]
    assert {"type": "integer"} in event["round"]["anyOf"]
    assert {"type": "null"} in event["cost_usd"]["anyOf"]
    assert {"type": "null"} in schemas["UsageTotals"]["properties"]["cost_usd"]["anyOf"]
    from tinytown.http.events import frame

    data = json.loads(frame({**rounds[-2], "round": "7", "cost_usd": ""})
                      .split("data: ")[1])  # the live stream: the same types
    assert (data["round"], data["cost_usd"]) == (7, None)


# --- keys, scopes, audit ----------------------------------------------------------------


def test_scopes_revocation_and_audit(served: Served) -> None:
    town = served.town
    anonymous = served.get("/v1/agents", scope=None)
    assert "needs an API key" in error_of(anonymous, 401)
    assert anonymous.headers["www-authenticate"] == "Bearer"
    with httpx.Client(base_url=served.server.base, timeout=10) as client:
        error_of(client.get("/v1/agents", headers=bearer("tt_" + "x" * 43)), 401)
        error_of(client.get("/v1/agents", headers={"Authorization": "Basic eDp5"}), 401)
        error_of(client.get("/v1/agents", headers={"Authorization": "Bearer"}), 401)
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").json()["ready"] is True
        error_of(client.get("/openapi.json"), 401)
        error_of(client.get("/metrics"), 401)
    assert "/v1/tasks" in served.get("/openapi.json").json()["paths"]

    tasks_before = len(town.town.list_tasks())
    line = error_of(served.post("/v1/tasks", {"agent": "alice", "description": "x"},
                                scope="read"), 403)
    assert line == "key 'reader' has scope read; this needs write"
    error_of(served.post("/v1/agents/alice/interrupt", scope="read"), 403)
    assert len(town.town.list_tasks()) == tasks_before
    assert town.agent_state("alice") == "idle"
    error_of(served.post("/v1/agents/alice/kill", scope="write"), 403)
    sent = served.post("/v1/agents/quiet/inbox", {"type": "ping"}, scope="admin")
    assert sent.status_code == 201

    def audited() -> list[dict[str, str]]:
        return [e for e in town.town.events(100) if e["kind"] == "api"]

    wait_until(lambda: len(audited()) >= 4, 10, "the audit events")
    seen = {(e["key_name"], e["method"], e["path"], e["status"]) for e in audited()}
    assert seen == {("reader", "POST", "/v1/tasks", "403"),
                    ("reader", "POST", "/v1/agents/alice/interrupt", "403"),
                    ("writer", "POST", "/v1/agents/alice/kill", "403"),
                    ("boss", "POST", "/v1/agents/quiet/inbox", "201")}
    everything = json.dumps(town.town.events(1000))
    assert not any(key in everything for key in served.keys.values())

    listed = {k["name"]: k for k in json.loads(town.tt("auth", "list", "--json").out)}
    assert listed["reader"]["last_used_at"] is not None
    assert town.tt("auth", "revoke", "reader").code == 0
    assert "not valid" in error_of(served.get("/v1/agents"), 401)  # at once
    assert served.get("/v1/agents", scope="write").status_code == 200


# --- events, live ------------------------------------------------------------------------


def _sse(lines: Iterator[str], until: Callable[[dict[str, str]], bool],
         deadline: float) -> tuple[list[dict[str, str]], list[str]]:
    """SSE messages read until one satisfies `until` (their data; their ids)."""
    events: list[dict[str, str]] = []
    ids: list[str] = []
    fields: dict[str, str] = {}
    for line in lines:
        if time.monotonic() > deadline:
            break
        if line == "":
            if "data" in fields:
                event = json.loads(fields["data"])
                assert fields["id"] == event["id"] and fields["event"] == event["kind"]
                events.append(event)
                ids.append(fields["id"])
                if until(event):
                    return events, ids
            fields = {}
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        fields[name] = value.removeprefix(" ")
    raise AssertionError(f"the awaited event did not come in time; got {events}")


def test_event_stream_delivers_changes_and_resumes(served: Served) -> None:
    alice = served.town.town.resolve("alice").id
    reader = served.client("read", timeout=httpx.Timeout(10, read=15))

    def state_of(new: str) -> Callable[[dict[str, str]], bool]:
        return lambda e: e["kind"] == "state" and e.get("agent") == alice and e["new"] == new

    with reader.stream("GET", "/v1/events/stream") as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        assert next(lines) == "retry: 1000"
        assert served.post("/v1/agents/alice/interrupt").status_code == 200
        changed = time.monotonic()
        events, ids = _sse(lines, state_of("paused"), changed + 5)
        assert time.monotonic() - changed < 1.0, "the state change took over a second"
        assert events[0]["kind"] != "spawned"  # it starts from now, not from the past
    paused_id = ids[-1]
    assert served.post("/v1/agents/alice/resume").status_code == 200  # while disconnected
    headers = {"Last-Event-ID": paused_id}
    with reader.stream("GET", "/v1/events/stream", headers=headers) as stream:
        events, ids = _sse(stream.iter_lines(), state_of("idle"), time.monotonic() + 5)
    assert ids[0] > paused_id and all(i > paused_id for i in ids)
    assert ("api", "/v1/agents/alice/interrupt") in [(e["kind"], e.get("path")) for e in events]
    with reader.stream("GET", "/v1/events/stream", params={"agent": "alice"},
                       headers=headers) as stream:
        events, _ = _sse(stream.iter_lines(), state_of("idle"), time.monotonic() + 5)
    assert all(e.get("agent") == alice for e in events)  # no api events: they name no agent
    error_of(reader.get("/v1/events/stream", headers={"Last-Event-ID": "abc"}), 422)
    error_of(reader.get("/v1/events/stream", params={"agent": "nobody"}), 404)

    # the server stops promptly even with a stream open
    with reader.stream("GET", "/v1/events/stream") as stream:
        assert next(stream.iter_lines()) == "retry: 1000"
        started = time.monotonic()
        served.server.stop(within=10)
        assert time.monotonic() - started < 8


# --- metrics, readiness ------------------------------------------------------------------


def test_metrics_parse_and_count_the_town(served: Served) -> None:
    task = served.post("/v1/tasks", {"agent": "alice", "description": "measured"}).json()
    served.town.wait_task(task["id"], TaskState.COMPLETED)
    served.town.wait_state("alice", "idle")
    r = served.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(r.text) for s in family.samples}
    assert samples[("tinytown_agents", (("state", "idle"),))] == 1
    assert samples[("tinytown_agents", (("state", "starting"),))] == 1  # quiet
    assert samples[("tinytown_agents", (("state", "error"),))] == 0
    assert samples[("tinytown_tasks", (("state", "completed"),))] == 1
    assert samples[("tinytown_agent_rounds_completed_total", (("agent", "alice"),))] == 1
    assert samples[("tinytown_agent_tasks_completed_total", (("agent", "alice"),))] == 1
    assert samples[("tinytown_agent_inbox_messages", (("agent", "quiet"),))] == 0
    assert samples[("tinytown_supervisor_leader", ())] == 1
    assert ("tinytown_town_cost_usd_total", ()) in samples
    # the round's duration, in the histogram every round's finish keeps in Redis
    assert samples[("tinytown_round_duration_seconds_count", ())] == 1
    assert samples[("tinytown_round_duration_seconds_bucket", (("le", "+Inf"),))] == 1
    assert samples[("tinytown_round_duration_seconds_bucket", (("le", "3600.0"),))] == 1
    assert 0 < samples[("tinytown_round_duration_seconds_sum", ())] < 60
    assert samples[("tinytown_round_failures_total", ())] == 0


def test_readiness_and_an_unreachable_redis(town_factory: Callable[..., TownFixture]) -> None:
    redis = start_redis()
    server: Server | None = None
    supervisor: subprocess.Popen[bytes] | None = None
    try:
        town = town_factory(url=redis.url)
        key = add_key(town, "ops", "read")
        server = start_server(town)
        with httpx.Client(base_url=server.base, timeout=10) as client:
            line = error_of(client.get("/readyz"), 503)
            assert "no supervisor leads" in line
            supervisor = subprocess.Popen(
                [sys.executable, "-m", "tinytown.supervisor", "--town", str(town.root)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            ready = wait_until(lambda: client.get("/readyz").status_code == 200 and
                               client.get("/readyz").json(), 20, "/readyz to answer 200")
            assert ready["ready"] is True and "@" in ready["supervisor"]
            supervisor.terminate()
            supervisor.wait(10)
            stop_redis(redis)
            assert "cannot reach Redis" in error_of(client.get("/readyz"), 503)
            for path in ("/v1/agents", "/metrics"):
                assert "cannot reach Redis" in error_of(
                    client.get(path, headers=bearer(key)), 503)
            assert client.get("/healthz").status_code == 200
    finally:
        if supervisor is not None and supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()
        if server is not None:
            server.stop()
        if redis.proc.poll() is None:
            stop_redis(redis)
    assert "Traceback" not in server.log_text()


# --- the OpenAPI document, exercised -----------------------------------------------------

# an endless stream, and a wait that may hold a thread for minutes: tested above
NOT_FUZZED = {("GET", "/v1/events/stream"), ("GET", "/v1/tasks/{ref}/wait")}


def test_every_route_of_the_openapi_document_never_answers_5xx(served: Served) -> None:
    """Property-based: schemathesis generates requests from /openapi.json (valid and
    not) for every route, with a write key (admin routes answer 403, and spawn would
    start processes running whatever command it drew); no answer is a 5xx, and every
    answer matches the schema's status codes and bodies."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis.checks import (
        not_a_server_error,
        response_schema_conformance,
        status_code_conformance,
    )

    document = served.get("/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document)
    headers = bearer(served.keys["write"])
    exercised = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in NOT_FUZZED:
            continue
        exercised.append(f"{operation.method.upper()} {operation.path}")
        for mode in schemathesis.GenerationMode:  # valid requests, then invalid ones

            @settings(max_examples=12, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case: schemathesis.Case) -> None:
                case.call_and_validate(base_url=served.server.base, headers=headers,
                                       timeout=30, checks=[not_a_server_error,
                                                           status_code_conformance,
                                                           response_schema_conformance])

            try:
                check()
            except Unsatisfiable:  # nothing to make invalid: the route takes no input
                assert mode == schemathesis.GenerationMode.NEGATIVE, operation.path
    assert len(exercised) >= 20, exercised
    assert "Traceback" not in served.server.log_text()
