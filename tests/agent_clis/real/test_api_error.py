"""An API error (the stub refuses every request with a 400): the task fails, its result
the provider's reason in one line, whatever way the CLI says it (an exit code, an error
event, a "successful" result whose text is the error, a line on stdout)."""

from __future__ import annotations

import pytest

from tests.agent_clis.real.clis import API_ERROR, params
from tests.agent_clis.real.towns import Preset
from tests.stubs._base import ApiError

pytestmark = pytest.mark.realcli


@pytest.mark.parametrize("preset", params(API_ERROR), indirect=True)
def test_an_api_error_fails_the_task_with_that_error(preset: Preset) -> None:
    preset.stub.push(ApiError(400, "the stub refuses this request", times=None))
    worker = preset.agent("e")
    state, result, _ = preset.task(worker, "e", "anything")
    assert state == "failed"
    # auggie names the status only ("❌ Invalid request: HTTP error: 400")
    said = "HTTP error: 400" if preset.name == "auggie" else "the stub refuses this request"
    assert said in result and "\n" not in result, result
