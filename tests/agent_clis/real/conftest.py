"""Fixtures the real-CLI tier's modules share: a sandbox (HOME, TMPDIR, work folder) for a
CLI run alone, and `preset`, a town running one CLI of the table against its stub
(parametrize it indirectly: `@pytest.mark.parametrize("preset", params(X), indirect=True)`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.agent_clis.real.towns import Preset, preset_town
from tests.helpers import InProcessWorker, TownFixture
from tests.stubs.realcli import Sandbox


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A HOME, TMPDIR and work folder of the test's own for a CLI's runs."""
    box = Sandbox()
    yield box
    box.cleanup()


@pytest.fixture
def preset(request: pytest.FixtureRequest, town_factory: Callable[..., TownFixture],
           worker_in_process: Callable[..., InProcessWorker],
           monkeypatch: pytest.MonkeyPatch) -> Iterator[Preset]:
    yield from preset_town(request.param, town_factory, worker_in_process, monkeypatch)
