"""`tt flower`: the real Flower against a running town, checked over HTTP and in a
real headless Chromium (a screenshot is kept in test-artifacts/)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import TT, TownFixture, one_line_error, wait_until
from tinytown.core.models import TaskState

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str, auth: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code, ""
    except OSError:
        return 0, ""


def start_flower(town: TownFixture, *args: str, env: dict[str, str] | None = None
                 ) -> subprocess.Popen[bytes]:
    return subprocess.Popen([TT, "flower", *args], cwd=town.root,
                            env={**os.environ, **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture
def flower(town: TownFixture) -> Iterator[tuple[TownFixture, str, subprocess.Popen[bytes]]]:
    assert town.tt("spawn", "alice").code == 0
    town.wait_state("alice", "idle")
    port = free_port()
    proc = start_flower(town, "--port", str(port), env={"FLOWER_UNAUTHENTICATED_API": "1"})
    base = f"http://127.0.0.1:{port}"
    try:
        yield town, base, proc
    finally:
        proc.terminate()
        proc.wait(20)


def _listening_addresses(port: int) -> set[str]:
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hexport = local.split(":")
            if int(hexport, 16) == port and state == "0A":  # LISTEN
                found.add(address)
    return found


def test_flower_shows_agents_and_rounds(
    flower: tuple[TownFixture, str, subprocess.Popen[bytes]],
) -> None:
    town, base, _ = flower
    host = socket.gethostname()
    wait_until(lambda: json.loads(get(f"{base}/api/workers?status=1")[1] or "{}")
               .get(f"alice@{host}") is True, 30, "Flower to see alice")
    task_id = town.tt("assign", "alice", "seen by flower").out.strip()
    town.wait_task(task_id, TaskState.COMPLETED)

    def round_seen() -> dict[str, object] | None:
        tasks = json.loads(get(f"{base}/api/tasks")[1] or "{}")
        done = [t for t in tasks.values() if t["name"] == "tinytown.round"
                and t["state"] == "SUCCESS" and t["worker"] == f"alice@{host}"]
        return done[0] if done else None

    seen = wait_until(round_seen, 20, "the round in Flower's task list")
    assert float(seen["runtime"]) > 0  # type: ignore[arg-type]
    port = int(base.rsplit(":", 1)[1])
    assert _listening_addresses(port) == {"0100007F"}  # 127.0.0.1 only


def test_flower_dashboard_in_headless_chromium(
    flower: tuple[TownFixture, str, subprocess.Popen[bytes]], tmp_path: Path,
) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (scripts/test installs Debian's package as root)")
    town, base, _ = flower
    host = socket.gethostname()
    wait_until(lambda: f"alice@{host}" in get(f"{base}/api/workers?status=1")[1], 30,
               "Flower to see alice")
    ARTIFACTS.mkdir(exist_ok=True)
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={tempfile.mkdtemp(dir=tmp_path)}",
             "--virtual-time-budget=5000", "--window-size=1280,800"]
    dom = subprocess.run([*flags, "--dump-dom", f"{base}/workers"], capture_output=True,
                         text=True, timeout=120)
    assert f"alice@{host}" in dom.stdout
    shot = ARTIFACTS / "flower-workers.png"
    shot.unlink(missing_ok=True)
    subprocess.run([*flags, f"--screenshot={shot}", f"{base}/workers"], capture_output=True,
                   timeout=120)
    assert shot.exists() and shot.stat().st_size > 5000


def test_flower_refuses_open_address_without_auth(town: TownFixture) -> None:
    r = town.tt("flower", "--address", "0.0.0.0")
    assert r.code == 2
    assert "refusing to serve Flower on 0.0.0.0 without authentication" in r.err


def test_flower_on_a_busy_port_says_so_in_one_line(town: TownFixture) -> None:
    with socket.socket() as taken:  # something else listens there already
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = town.tt("flower", "--port", str(port), timeout=60)
        line = one_line_error(r, 1)
        assert f"port {port} on 127.0.0.1 is in use" in line and "--port" in line
        assert _listening_addresses(port) == {"0100007F"}  # still only the test's socket


def test_flower_basic_auth_is_enforced_and_never_on_the_command_line(town: TownFixture) -> None:
    port = free_port()
    proc = start_flower(town, "--port", str(port), "--basic-auth", "admin:hunter2-secret")
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: get(f"{base}/api/workers")[0] == 401, 30, "Flower to answer 401")
        assert get(f"{base}/api/workers", auth="admin:hunter2-secret")[0] == 200
        assert get(f"{base}/api/workers", auth="admin:wrong")[0] == 401
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        assert b"hunter2" not in cmdline and b"flower" in cmdline
    finally:
        proc.terminate()
        proc.wait(20)
