"""Two machines, for real: network namespaces joined by a veth pair.

Host A runs the town's Redis (TCP, password) and the `tt` commands; host B runs an
agent worker against it with nothing but the same tinytown.toml and Redis URL. Needs
root and iproute2; skipped with the reason otherwise.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import FAKE_CLI, TT, wait_until
from tinytown.db.embedded import find_redis_server

PASSWORD = "s3cret-two-hosts"


def _netns_usable() -> str | None:
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    if shutil.which("ip") is None:
        return "needs iproute2 (`ip`)"
    # a name of this process's: every xdist worker probes as it collects, all at once
    name = f"tt-probe-{os.getpid()}"
    probe = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot create network namespaces here: {probe.stderr.strip()}"
    subprocess.run(["ip", "netns", "delete", name], capture_output=True)
    return None


_SKIP = _netns_usable()
pytestmark = pytest.mark.skipif(_SKIP is not None, reason=_SKIP or "")


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True)


@dataclass
class Hosts:
    a: str
    b: str
    veth_a: str
    ip_a: str
    root: Path
    procs: list[subprocess.Popen[bytes]]

    def tt(self, *args: str, ns: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", ns or self.a, TT, *args], cwd=self.root,
            capture_output=True, text=True, timeout=60, env={**os.environ, "REDIS_URL": ""},
        )

    def task_state(self, task_id: str) -> str:
        out = self.tt("task", "show", task_id, "--json")
        return str(json.loads(out.stdout)["state"]) if out.returncode == 0 else "?"


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[Hosts]:
    n = random.randint(10, 250)
    a, b = f"tt-a-{n}", f"tt-b-{n}"
    veth_a, veth_b = f"tta{n}", f"ttb{n}"
    ip_a, ip_b = f"10.231.{n}.1", f"10.231.{n}.2"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for ns in (a, b):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "link", "add", veth_a, "netns", a, "type", "veth", "peer", "name", veth_b,
           "netns", b)
        sh("ip", "-n", a, "addr", "add", f"{ip_a}/24", "dev", veth_a)
        sh("ip", "-n", b, "addr", "add", f"{ip_b}/24", "dev", veth_b)
        sh("ip", "-n", a, "link", "set", veth_a, "up")
        sh("ip", "-n", b, "link", "set", veth_b, "up")
        procs.append(subprocess.Popen(
            ["ip", "netns", "exec", a, find_redis_server(), "--port", "6390", "--bind", ip_a,
             "--requirepass", PASSWORD, "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))
        root = tmp_path / "town"
        root.mkdir()
        (root / "tinytown.toml").write_text(
            f'[town]\nname = "twohosts"\n\n[redis]\nurl = "redis://:{PASSWORD}@{ip_a}:6390/0"\n'
            f'\n[agent]\ndefault_cli = "{FAKE_CLI}"\n\n[supervisor]\nautostart = false\n'
        )
        h = Hosts(a, b, veth_a, ip_a, root, procs)
        wait_until(lambda: h.tt("list").returncode == 0, 15, "Redis on host A")
        yield h
    finally:
        for p in procs:
            p.kill()
            p.wait()
        for ns in (a, b):
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)


def test_work_assigned_on_one_host_is_done_on_the_other(hosts: Hosts) -> None:
    r = hosts.tt("spawn", "builder", "--no-start")
    assert r.returncode == 0, r.stderr
    worker = subprocess.Popen(
        ["ip", "netns", "exec", hosts.b, sys.executable, "-m", "tinytown.cli", "worker",
         "builder"], cwd=hosts.root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    hosts.procs.append(worker)
    first = hosts.tt("assign", "builder", "built across the wire").stdout.strip()
    wait_until(lambda: hosts.task_state(first) == "completed", 30, "the first task")
    status = hosts.tt("status")
    assert "builder" in status.stdout and PASSWORD not in status.stdout + status.stderr

    # cut the link, queue work while it is down, restore it: the worker carries on
    sh("ip", "-n", hosts.a, "link", "set", hosts.veth_a, "down")
    second = hosts.tt("assign", "builder", "queued during the outage").stdout.strip()
    unreachable = hosts.tt("list", ns=hosts.b)
    assert unreachable.returncode == 69 and PASSWORD not in unreachable.stderr
    sh("ip", "-n", hosts.a, "link", "set", hosts.veth_a, "up")
    wait_until(lambda: hosts.task_state(second) == "completed", 90,
               "the worker to reconnect and do the queued task")
    assert worker.poll() is None
