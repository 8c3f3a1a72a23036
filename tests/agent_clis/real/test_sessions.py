"""Sessions: the agent's next task continues the CLI's session (the model sees the first
task's conversation), and a forked agent starts from its parent's conversation (the
CLI's fork, or the parent's transcript in the prompt where the CLI has none)."""

from __future__ import annotations

import pytest

from tests.agent_clis.real.clis import FORK, SESSION, params
from tests.agent_clis.real.towns import Preset
from tests.stubs._base import Text
from tinytown.core.presets import resolve_cli

pytestmark = pytest.mark.realcli


@pytest.mark.parametrize("preset", params(SESSION), indirect=True)
def test_the_next_task_continues_the_session(preset: Preset) -> None:
    preset.stub.push(Text("first done"), Text("second done"))
    worker = preset.agent("s")
    state, result, _ = preset.task(worker, "s", "Remember the word marker-pelican")
    assert state == "completed" and "first done" in result, result
    session = preset.town.town.resolve("s").session_id
    assert session
    state, result, _ = preset.task(worker, "s", "Which word was it?")
    assert state == "completed" and "second done" in result, result
    second = preset.conversation()
    assert "marker-pelican" in second and "first done" in second  # the first conversation
    assert preset.town.town.resolve("s").session_id == session


@pytest.mark.parametrize("preset", params(FORK), indirect=True)
def test_a_fork_starts_from_the_parents_conversation(preset: Preset) -> None:
    preset.stub.push(Text("parent done"), Text("child done"))
    parent = preset.agent("p")
    preset.task(parent, "p", "The secret is marker-walrus")
    child = preset.agent("c", parent="p", fork=True)
    state, result, _ = preset.task(child, "c", "Go on")
    assert state == "completed" and "child done" in result, result
    assert "marker-walrus" in preset.conversation()
    child_session = preset.town.town.resolve("c").session_id
    if not resolve_cli(preset.town.town.settings, preset.name).sessions:
        # the parent's transcript in the prompt; no session kept
        assert child_session is None and preset.town.town.resolve("p").session_id is None
    else:
        assert child_session != preset.town.town.resolve("p").session_id
