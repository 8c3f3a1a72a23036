"""Placement, pure (`tinytown.core.placement`): which live host that fits gets an agent,
why none does, and the restart backoff."""

from __future__ import annotations

import time

from tinytown.core import placement
from tinytown.core.models import Agent, AgentState


def _host(name: str, **kw: object) -> placement.HostInfo:
    return placement.HostInfo(name=name, beat=time.time(), clis=["claude"], **kw)  # type: ignore[arg-type]


def test_the_least_loaded_live_host_that_fits_is_chosen() -> None:
    a, b = _host("a"), _host("b", labels=["gpu"])
    busy = [Agent("x", host="a", state=AgentState.IDLE)]
    assert placement.choose([a, b], "claude", [], busy, 15).name == "b"  # type: ignore[union-attr]
    assert placement.choose([a, b], "claude", ["gpu"], [], 15).name == "b"  # type: ignore[union-attr]
    assert placement.choose([a, b], "claude", ["tpu"], [], 15) is None
    cold = [Agent("y", host="b", state=AgentState.COLD)]  # costs nothing: not load
    assert placement.choose([a, b], "claude", [], busy + cold, 15).name == "b"  # type: ignore[union-attr]
    gone = _host("c")
    gone.beat -= 60
    assert placement.choose([gone], "claude", [], [], 15) is None
    full = _host("d", max_agents=1)
    assert placement.unfit(full, "claude", [], [Agent("z", host="d", state=AgentState.IDLE)]) \
        == "full (1 agents)"
    lacking = _host("e", lacks=["codex"])
    assert placement.unfit(lacking, "codex", [], []) == "no 'codex' installed"
    assert placement.unfit(_host("f", draining=True), "claude", [], []) == "draining"
    assert "gone" in placement.why_none([gone], "claude", [], [], 15)


def test_backoff_doubles_up_to_its_cap() -> None:
    assert [placement.backoff(n, 1, 60) for n in (1, 2, 3, 7, 40)] == [1, 2, 4, 60, 60]
