"""A test that holds processes until it is stopped: not collected by the suite (no
`test_` prefix); tests/test_suite_cleanup.py runs it in a pytest of its own and stops
that pytest mid-test (SIGTERM, or a crash of its xdist worker)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.helpers import TownFixture, session_tmp, tt


def test_hold_processes_until_stopped(town: TownFixture) -> None:
    # a worker and its fake CLI mid-round, on the session's redis-server
    assert town.tt("spawn", "alice").code == 0
    town.town.assign("alice", __import__("tinytown").Task("hold @sleep 300"))
    # an embedded town's daemonized redis-server, that no fixture stops
    root = session_tmp("tt-s")
    assert tt("init", "--name", "held", cwd=root, env={"REDIS_URL": ""}).code == 0
    (town.records / "alice-1.sleeping").parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + 60
    while not (town.records / "alice-1.sleeping").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    Path(os.environ["TT_SUBJECT_READY"]).write_text(str(os.getpid()))
    time.sleep(300)
