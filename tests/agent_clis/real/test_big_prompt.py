"""A 200 KiB prompt arrives whole at the model: through Tinytown (a preset never passes
the prompt as an argument, which Linux caps at 128 KiB), and to the CLI run alone."""

from __future__ import annotations

import pytest

from tests.agent_clis.real.clis import (
    ALONE_BIG_PROMPT,
    BIG_PROMPT,
    BY_NAME,
    big_prompt,
    params,
    stub_of,
)
from tests.agent_clis.real.towns import Preset
from tests.stubs._base import Text
from tests.stubs.realcli import Sandbox, installed

pytestmark = pytest.mark.realcli


@pytest.mark.parametrize("preset", params(BIG_PROMPT), indirect=True)
def test_a_200_kib_prompt_arrives_whole(preset: Preset) -> None:
    preset.stub.push(Text("ok"))
    worker = preset.agent("b")
    text = big_prompt()
    state, result, _ = preset.task(worker, "b", text)
    assert state == "completed", result
    assert text in preset.conversation()


@pytest.mark.parametrize("name", params(ALONE_BIG_PROMPT))
def test_the_cli_alone_gets_a_200_kib_prompt_whole(name: str, sandbox: Sandbox) -> None:
    cli = BY_NAME[name]
    binary = installed(cli.binary)
    prompt = big_prompt()
    for stub in stub_of(cli):
        stub.push(Text("ok"))
        run = cli.run_alone(binary, sandbox, stub, prompt)
        assert run.returncode == 0, run.describe()
        seen = [stub.conversation_text(r) for r in stub.main_requests]  # type: ignore[attr-defined]
        assert any(prompt in text for text in seen), stub.summary()
