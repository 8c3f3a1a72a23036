"""A town whose agents run one real CLI of the table (clis.py) against its stub: the
agent's worker runs in this process (its rounds are what is tested); the CLI is the real
program, installed by scripts/install-clis, with a HOME of its own."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.agent_clis.real.clis import BY_NAME, stub_of
from tests.helpers import InProcessWorker, TownFixture
from tests.stubs._base import StubServer, Text, ToolCall
from tests.stubs.openai import aider_new_file
from tests.stubs.realcli import Sandbox, installed


@dataclass
class Preset:
    """One preset's agent in a town, its stub, and the CLI's sandbox (HOME, TMPDIR)."""

    name: str
    town: TownFixture
    stub: StubServer
    sandbox: Sandbox
    worker: Callable[..., InProcessWorker]

    def make_file(self, answer: str) -> None:
        """Script: the CLI's tool writes out.txt, then the model answers `answer`."""
        if self.name == "aider":  # it runs no shell tool: an edit that creates the file
            self.stub.push(Text(aider_new_file("out.txt", "made by the agent", before=answer)))
        else:
            self.stub.push(ToolCall("printf 'made by the agent' > out.txt"), Text(answer))

    def agent(self, name: str, **spawn: object) -> InProcessWorker:
        self.town.town.spawn_agent(name, start=False, **spawn)  # type: ignore[arg-type]
        return self.worker(self.town, name)

    def task(self, worker: InProcessWorker, ref: str, text: str) -> tuple[str, str, str]:
        """Assign, run the round; the task's state, result and id."""
        task_id = self.town.town.assign(ref, text)
        worker.run_round()
        task = self.town.town.store.require_task(task_id)
        return task.state.value, task.result or "", task_id

    def conversation(self, index: int = -1) -> str:
        return str(self.stub.conversation_text(  # type: ignore[attr-defined]
            self.stub.main_requests[index]))


def cli_environment(name: str, sandbox: Sandbox, stub: StubServer) -> dict[str, str]:
    """The environment (and config files under the sandbox's HOME) that point CLI
    `name` at `stub`, as a user would set them."""
    return BY_NAME[name].point(sandbox, stub)


def preset_town(name: str, town_factory: Callable[..., TownFixture],
                worker_in_process: Callable[..., InProcessWorker],
                monkeypatch: pytest.MonkeyPatch, extra: str = "",
                **town: object) -> Iterator[Preset]:
    """A town whose default CLI is preset `name`, its CLI pointed at a stub."""
    binary = installed(BY_NAME[name].binary)
    sandbox = Sandbox()
    try:
        for stub in stub_of(BY_NAME[name]):
            env = cli_environment(name, sandbox, stub)
            for key, value in sandbox.env(env).items():
                monkeypatch.setenv(key, value)
            monkeypatch.setenv("PATH", f"{Path(binary).parent}{os.pathsep}{os.environ['PATH']}")
            yield Preset(name, town_factory(cli=name, extra=extra, **town), stub, sandbox,
                         worker_in_process)
    finally:
        sandbox.cleanup()
