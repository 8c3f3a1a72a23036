"""A usage limit (a 429 on every request, naming when it resets): the round ends at the
limit, the task waits (`assigned`, not failed), every agent of the account pauses, and
they carry on by themselves after the reset (the supervisor resumes them)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest

from tests.agent_clis.real.clis import BY_NAME, LIMIT, params
from tests.agent_clis.real.towns import Preset, preset_town
from tests.helpers import InProcessWorker, TownFixture, wait_until
from tests.stubs._base import ApiError, Text
from tinytown.core.models import TaskState, format_timestamp, utcnow

pytestmark = pytest.mark.realcli


@pytest.fixture
def preset(request: pytest.FixtureRequest, town_factory: Callable[..., TownFixture],
           worker_in_process: Callable[..., InProcessWorker],
           monkeypatch: pytest.MonkeyPatch) -> Iterator[Preset]:
    """A round long enough for the CLI's own retries of a 429 (aider's)."""
    yield from preset_town(request.param, town_factory, worker_in_process, monkeypatch,
                           round_timeout=BY_NAME[request.param].limit_round)


@pytest.mark.timeout(300)  # aider retries for a minute or so first
@pytest.mark.parametrize("preset", params(LIMIT), indirect=True)
def test_a_usage_limit_pauses_the_account_until_it_resets(preset: Preset) -> None:
    resets = utcnow() + timedelta(seconds=5)
    message = f"usage limit reached, resets at {format_timestamp(resets)}"
    # Codex retries a 429 and then names no reset time: the backoff applies
    preset.town.town.settings.budget.usage_limit_backoff_secs = 5
    headers = dict(BY_NAME[preset.name].limit_headers)
    preset.stub.push(ApiError(429, message, headers=headers, times=None))
    if preset.name == "claude":  # the environment is the fixture's (monkeypatched)
        os.environ["CLAUDE_CODE_MAX_RETRIES"] = "0"
    worker = preset.agent("u")
    other = preset.agent("v")  # the same CLI: the same account
    town = preset.town
    supervisor = subprocess.Popen([sys.executable, "-m", "tinytown.supervisor", "--town",
                                   str(town.root)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
    try:
        state, result, task_id = preset.task(worker, "u", "work until the limit")
        assert state == "assigned", result  # not failed: it waits for the reset
        u, v = town.town.resolve("u"), town.town.resolve("v")
        assert (u.state.value, v.state.value) == ("paused", "paused"), (u.hold, v.hold)
        assert u.hold is not None and "usage limit" in u.hold
        preset.stub.clear_script()  # the provider answers again
        preset.stub.push(Text("done after the reset"))
        wait_until(lambda: town.agent_state("u") == "idle", 30, "the supervisor to resume u")
        assert utcnow() >= resets - timedelta(seconds=1)
        assert town.agent_state("v") == "idle"
        worker.run_round()
        assert town.task_state(task_id) == TaskState.COMPLETED
        assert other.agent_id != worker.agent_id
    finally:
        supervisor.terminate()
        supervisor.wait(10)
