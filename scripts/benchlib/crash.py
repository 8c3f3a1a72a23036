"""Crash detection: SIGKILL an idle agent's worker at a random heartbeat phase; time
until its record says `error`, against when Celery's event state (what Flower shows)
marks the worker offline."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from typing import TYPE_CHECKING, Any

from celery.events.state import State

from tinytown.celery_app import make_app
from tinytown.core.models import AgentState
from tinytown.db import runtime

from .common import log, median, wait_until, worker_pid

if TYPE_CHECKING:
    from tinytown.ops.facade import Town

    from .harness import Bench


class EventsView:
    """What Flower runs: an event receiver feeding a celery.events.state.State, in a
    thread, reconnecting should the connection drop."""

    def __init__(self, town: Town) -> None:
        self.app = make_app(town.settings)
        self.state = State()
        self.stop = threading.Event()
        self.receivers: list[Any] = []
        threading.Thread(target=self._consume, daemon=True).start()

    def _consume(self) -> None:
        while not self.stop.is_set():
            try:
                with self.app.connection_for_read() as conn:
                    recv = self.app.events.Receiver(conn, handlers={"*": self.state.event})
                    self.receivers.append(recv)
                    recv.capture(limit=None, timeout=None, wakeup=False)
            except Exception:
                time.sleep(0.5)

    def close(self) -> None:
        self.stop.set()
        for recv in self.receivers:
            recv.should_stop = True

    def last_beat(self, hostname: str) -> float:
        w = self.state.workers.get(hostname)
        return w.heartbeats[-1] if w is not None and w.heartbeats else 0.0

    def offline(self, hostname: str) -> bool:
        w = self.state.workers.get(hostname)
        return w is not None and not w.alive


def trial(b: Bench, view: EventsView, k: int, limit: float,
          interval: float) -> tuple[float, float]:
    """One victim: (seconds to its `error` record, seconds to the events view offline)."""
    town = b.town
    h = town.spawn_agent(f"victim{k}", cli="/bin/true")
    h.wait_for_state(AgentState.IDLE, timeout=60)
    pid = worker_pid(town, h.id)
    hostname = runtime.read(town.store, h.id)["hostname"]
    b0 = wait_until(lambda: view.last_beat(hostname), 30, "Celery events of the victim", 0.02)
    wait_until(lambda: view.last_beat(hostname) > b0, 30, "a fresh heartbeat", 0.01)
    time.sleep(random.uniform(0, interval))  # kill at a random heartbeat phase
    t_kill = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    t_tt = t_fl = None
    while time.monotonic() - t_kill < limit * 3 + 20 and (t_tt is None or t_fl is None):
        now = time.monotonic()
        if t_fl is None and view.offline(hostname):
            t_fl = now - t_kill
        agent = town.store.get_agent(h.id)
        if t_tt is None and agent is not None and agent.state == AgentState.ERROR:
            t_tt = now - t_kill
        time.sleep(0.02)
    if t_tt is None or t_fl is None:
        raise RuntimeError(f"crash not detected (tinytown {t_tt}, events {t_fl})")
    return t_tt, t_fl


def run(b: Bench) -> None:
    settings = b.town.settings.supervisor
    limit = settings.heartbeat_timeout_secs
    interval = settings.heartbeat_interval_secs
    trials = 1 if b.quick else 3
    tt_s: list[float] = []
    fl_s: list[float] = []
    view = EventsView(b.town)
    try:
        for k in range(trials):
            t_tt, t_fl = trial(b, view, k, limit, interval)
            tt_s.append(t_tt)
            fl_s.append(t_fl)
            log(f"crash trial {k}: record error after {t_tt:.2f}s, "
                f"Celery events view offline after {t_fl:.2f}s")
    finally:
        view.close()
    b.results.raw["crash_s"] = {"tinytown": tt_s, "celery_events_state": fl_s,
                                "heartbeat_timeout_secs": limit,
                                "heartbeat_interval_secs": interval}
    b.results.add(f"crash detection, SIGKILL → record `error` (median of {trials})",
                  "s", median(tt_s), median(fl_s),
                  f"report (limit {limit:g} s, heartbeat {interval} s)",
                  baseline_name="celery.events.state.State (Flower's view): offline")
