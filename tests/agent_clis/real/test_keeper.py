"""A shell tool of a real CLI (those of the table that run shell tools headless; clis.py)
does not outlive its worker's SIGKILL (issue 20, point 23): workers started with `tt
spawn` (each under its keeper), the real CLI against its stub, whose answer makes it run
`sleep` as its shell tool; the worker is killed (only the worker, not its keeper) while
the tool runs, and the tool's shell and its `sleep` must be gone within seconds, every
time.

A race: the CLI dies after its worker (the worker's watchdog kills its group), and its
tool's shell, in a session of its own, is orphaned only when the CLI's last thread has
gone; a keeper that exited before then left it to init, alive. So the kill is repeated
(several agents at once, in rounds): Claude Code 20 times (TT_KEEPER_TRIES), the
others 4. Before the fix about half the tries of each CLI left the tool running.
"""

from __future__ import annotations

import os
import random
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.agent_clis.real.clis import BY_NAME, KEEPER, params, stub_of
from tests.helpers import TownFixture, pid_gone, wait_until
from tests.stubs._base import StubServer, ToolCall
from tests.stubs.realcli import Sandbox, installed
from tinytown.core import keys
from tinytown.core.models import Task

pytestmark = pytest.mark.realcli
TRIES = int(os.environ.get("TT_KEEPER_TRIES") or 20)  # of Claude Code
AT_ONCE = 4  # agents killed in one round; the other CLIs' tries


def marked(marker: str) -> dict[int, int]:
    """pid -> parent pid of every live process whose command line holds `marker`."""
    found: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes()
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if marker.encode() in argv and fields[0] != "Z":
            found[int(entry)] = int(fields[1])
    return found


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


@pytest.fixture
def cli_town(request: pytest.FixtureRequest, town_factory: Callable[..., TownFixture],
             monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TownFixture, StubServer, int]]:
    """A town whose agents run a real CLI against its stub (the workers that `tt spawn`
    starts inherit the stub's environment), and how many tries to make."""
    name = request.param
    cli = BY_NAME[name]
    binary = installed(cli.binary)
    sandbox = Sandbox()
    try:
        for stub in stub_of(cli):
            for key, value in sandbox.env(cli.point(sandbox, stub)).items():
                monkeypatch.setenv(key, value)
            monkeypatch.setenv("PATH", f"{Path(binary).parent}{os.pathsep}{os.environ['PATH']}")
            yield town_factory(cli=name, round_timeout=300), stub, \
                TRIES if name == "claude" else AT_ONCE
    finally:
        sandbox.cleanup()


@pytest.mark.timeout(300)  # 20 tries: ~30 s alone, longer on a loaded machine
@pytest.mark.parametrize("cli_town", params(KEEPER), indirect=True)
def test_a_shell_tool_does_not_outlive_its_workers_sigkill(
    cli_town: tuple[TownFixture, StubServer, int],
) -> None:
    town, stub, tries = cli_town
    marker = f"9{random.randrange(10**6):06d}.5"  # `sleep 9xxxxxx.5`: ours, found by argv
    stub.push(ToolCall(f"sleep {marker}", times=None))  # every agent's first request
    escaped: list[str] = []
    try:
        for start in range(0, tries, AT_ONCE):
            names = [f"a{i}" for i in range(start, min(start + AT_ONCE, tries))]
            escaped += _one_round(town, names, marker)
        left = sum("(sleep," in e for e in escaped)
        assert not escaped, f"{left} of {tries} tries left the tool running: {escaped}"
    finally:
        for pid in marked(marker):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _one_round(town: TownFixture, names: list[str], marker: str) -> list[str]:
    """Spawn `names`, give each a task whose tool sleeps, SIGKILL each worker while the
    tool runs; what each left running a few seconds later."""
    for name in names:
        spawned = town.tt("spawn", name, timeout=120)
        assert spawned.code == 0, spawned.err
    for name in names:
        town.wait_state(name, "idle", timeout=60)
    before = set(marked(marker))
    for name in names:
        town.town.assign(name, Task(f"Run the sleep ({name})"))
    sleeps = wait_until(lambda: (s := [p for p in set(marked(marker)) - before
                                       if comm(p) == "sleep"]) and len(s) >= len(names) and s,
                        120, "every agent's tool to run")
    watched = set(marked(marker)) - before  # the tools' shells and their sleeps
    keepers = []
    for name in names:
        agent_id = town.town.resolve(name).id
        worker = int(town.town.redis.hget(keys.runtime(town.name, agent_id), "pid") or 0)
        keepers.append(int(Path(f"/proc/{worker}/stat").read_text().rsplit(")", 1)[1].split()[1]))
        os.kill(worker, signal.SIGKILL)  # the worker alone, not its keeper
    try:
        wait_until(lambda: all(pid_gone(p) for p in watched | set(keepers)), 10,
                   "the tools and the keepers to be gone")
    except AssertionError:
        pass
    left = {p: pp for p, pp in marked(marker).items() if p in watched}
    assert len(sleeps) == len(names)
    return [f"{p} ({comm(p)}, parent {pp})" for p, pp in left.items()] + [
        f"keeper {p}" for p in keepers if not pid_gone(p)]
