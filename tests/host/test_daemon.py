"""A host daemon (`tt host`) on this machine: it registers, runs the agents placed on it,
refuses a twin of its name, and stops with `tt down`; `tt hosts` and `tt host drain`
with no daemon. Host daemons across machines are test_fleet.py."""

from __future__ import annotations

import json
import subprocess

from tests.helpers import TT, TownFixture, wait_until
from tinytown.core.models import TaskState


def test_hosts_lists_none_and_drain_names_an_unknown_host(town: TownFixture) -> None:
    assert "no host daemons" in town.tt("hosts").out
    r = town.tt("host", "drain", "nowhere")
    assert r.code == 1 and "no host named 'nowhere'" in r.err
    r = town.tt("host", "--name", "bad name!")
    assert r.code == 2 and "host name 'bad name!'" in r.err


def test_a_host_daemon_on_this_machine_runs_agents_and_stops_with_tt_down(
        town: TownFixture) -> None:
    log = (town.root / "host.log").open("ab")
    host = subprocess.Popen([TT, "host", "--name", "here"], cwd=town.root, stdout=log,
                            stderr=log, start_new_session=True)
    log.close()
    try:
        wait_until(lambda: [h for h in town.town.hosts() if h["state"] == "live"], 30,
                   "the host daemon to register")
        twin = town.tt("host", "--name", "here")  # a second daemon of that name: refused
        assert twin.code == 1 and "host 'here' runs on" in twin.err
        assert len(twin.err.strip().splitlines()) == 1
        assert town.tt("spawn", "placed").code == 0
        assert town.town.resolve("placed").host == "here"
        task_id = town.town.assign("placed", "run on the host")
        town.wait_task(task_id, TaskState.COMPLETED, timeout=60)
        doctor = json.loads(town.tt("doctor", "--json").out)
        assert [(h["name"], h["state"], h["load"]) for h in doctor["host_daemons"]] \
            == [("here", "live", 1)]
        assert "host daemons: here on" in town.tt("doctor").out
        r = town.tt("down")
        assert r.code == 0, r.err
        assert host.wait(30) == 0  # stopped warmly, after its agents
        assert town.town.hosts() == []  # it unregistered
    finally:
        if host.poll() is None:
            host.kill()
            host.wait()
