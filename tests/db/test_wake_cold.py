"""Waking a cold agent and choosing its host: one function (`db.fleet.wake_cold`) that a
client (`tt send`/`tt assign` to a cold agent), a worker (work that arrived while it
drained) and a draining host daemon all use. Against a real Redis, with host records
as host daemons write them (no daemon process is needed to be chosen)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.helpers import TownFixture
from tinytown.core.models import Agent, AgentState
from tinytown.core.placement import HostInfo
from tinytown.db import fleet
from tinytown.db import host_store as hosts

pytestmark = pytest.mark.timeout(60)
TIMEOUT = 3.0


def _cold(town: TownFixture, name: str, on: str | None) -> Agent:
    town.town.spawn_agent(name, start=False, cold=True, host="local")
    store = town.town.store
    agent = store.require_agent(town.town.resolve(name).id)
    if on is not None:
        assert fleet.move(store, agent.id, None, on)
    return store.require_agent(agent.id)


def _host(town: TownFixture, name: str, live: bool) -> None:
    now = time.time()
    hosts.register(town.town.store, HostInfo(name=name, machine="m", pid=1, started=now,
                                             beat=now if live else now - 10 * TIMEOUT))


def test_a_cold_agent_on_a_gone_host_wakes_on_a_live_one(
        town_factory: Callable[..., TownFixture]) -> None:
    town = town_factory()
    _host(town, "gone", live=False)
    _host(town, "live", live=True)
    agent = _cold(town, "a", on="gone")
    started: list[Agent] = []
    woken = fleet.wake_cold(town.town.store, agent, "work arrived", TIMEOUT, started.append)
    assert woken is not None and woken.host == "live" and woken.state == AgentState.STARTING
    assert started == []  # the live host starts it, not the caller
    assert town.town.store.require_agent(agent.id).host == "live"


def test_with_no_live_host_the_caller_starts_it_here(
        town_factory: Callable[..., TownFixture]) -> None:
    town = town_factory()
    _host(town, "gone", live=False)
    agent = _cold(town, "b", on="gone")
    started: list[Agent] = []
    woken = fleet.wake_cold(town.town.store, agent, "work arrived", TIMEOUT, started.append)
    assert woken is not None and [a.id for a in started] == [agent.id]
    record = town.town.store.require_agent(agent.id)
    assert record.host is None and record.state == AgentState.STARTING


def test_without_a_way_to_start_it_here_it_stays_cold(
        town_factory: Callable[..., TownFixture]) -> None:
    """A draining host daemon moving a cold agent wakes it only where a live host can
    run it: it does not start a worker on the machine it is leaving."""
    town = town_factory()
    agent = _cold(town, "c", on=None)
    assert fleet.wake_cold(town.town.store, agent, "moved", TIMEOUT, None) is None
    assert town.town.store.require_agent(agent.id).state == AgentState.COLD


def test_an_agent_no_longer_cold_is_left_alone(
        town_factory: Callable[..., TownFixture]) -> None:
    town = town_factory()
    agent = _cold(town, "d", on=None)
    started: list[Agent] = []
    assert fleet.wake_cold(town.town.store, agent, "first", TIMEOUT, started.append)
    assert fleet.wake_cold(town.town.store, agent, "second", TIMEOUT, started.append) is None
    assert len(started) == 1
