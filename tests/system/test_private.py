"""Town data is private to its user: private folders and files (what a round and an agent
write, an embedded town's Redis files), and a safe socket folder in /tmp."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import TT, TownFixture, wait_until
from tinytown.core import urls
from tinytown.core.errors import ConfigError
from tinytown.core.models import TaskState
from tinytown.db.embedded import EmbeddedRedis
from tinytown.ops.facade import Town


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_what_a_round_writes_is_private(town: TownFixture) -> None:
    assert town.tt("spawn", "alice").code == 0
    task_id = town.tt("assign", "alice", "write it down").out.strip()
    wait_until(lambda: town.town.task(task_id).state.is_terminal, 30, "the task to end")
    tt_dir = town.root / ".tt"
    logs = tt_dir / "logs" / "alice"
    for folder in (tt_dir, tt_dir / "logs", logs):
        assert mode(folder) == 0o700, folder
    for name in ("worker.log", "round-1.log", "round-1.prompt"):
        assert mode(logs / name) == 0o600, name
    saved = town.tt("save")
    assert saved.code == 0, saved
    snapshot = Path(saved.out.split(" to ")[-1].strip())
    assert mode(snapshot) == 0o600 and mode(snapshot.parent) == 0o700


WRITER = """import os, pathlib, sys
sys.stdin.read()
out = pathlib.Path(os.environ["FAKE_AGENT_DIR"])
(out / "made-dir").mkdir(parents=True)
(out / "made-dir" / "made.txt").write_text("an agent's work")
print("written")
"""


def test_what_an_agent_writes_has_the_users_own_mode(
        town_factory: Callable[..., TownFixture], tmp_path: Path) -> None:
    """The town's processes run with umask 077; the agent CLI with the user's (here
    027, recorded by `tt spawn`), so its files in the project are not made private."""
    writer = tmp_path / "writer.py"
    writer.write_text(WRITER)
    town = town_factory(cli=f"{sys.executable} {writer}")
    spawned = subprocess.run([TT, "spawn", "alice"], cwd=town.root, capture_output=True,
                             text=True, env={**os.environ, "FAKE_AGENT_DIR": str(town.records)},
                             umask=0o027, timeout=60)
    assert spawned.returncode == 0, spawned.stderr
    task_id = town.tt("assign", "alice", "write a file").out.strip()
    town.wait_task(task_id, TaskState.COMPLETED, timeout=30)
    assert mode(town.records / "made-dir") == 0o750
    assert mode(town.records / "made-dir" / "made.txt") == 0o640
    logs = town.root / ".tt" / "logs" / "alice"
    assert mode(logs / "worker.log") == mode(logs / "round-1.log") == 0o600  # still the town's


def test_an_embedded_town_keeps_its_redis_files_private(tmp_path: Path) -> None:
    town = Town.init(tmp_path, name="private")
    try:
        town.store.set_stop("x")  # something for the AOF
        runtime = tmp_path / ".tt"
        assert mode(runtime) == 0o700
        written = [p for p in runtime.rglob("*") if p.is_file() and p.name != "redis.lock"]
        assert any("appendonly" in p.name for p in written), written
        for path in written:
            assert mode(path) & 0o077 == 0, path
    finally:
        town.down()


def _long_runtime_dir(tmp_path: Path) -> Path:
    """A .tt folder whose socket path is too long for AF_UNIX: the socket goes to the
    fallback folder."""
    deep = tmp_path / ("d" * 60) / ("e" * 60) / ".tt"
    deep.mkdir(parents=True)
    return deep


@pytest.fixture
def fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "sockets"
    monkeypatch.setattr(urls, "SOCKET_FALLBACK", str(folder))
    return folder


def test_the_socket_folder_in_tmp_is_created_ours_alone(tmp_path: Path, fallback: Path) -> None:
    server = EmbeddedRedis(_long_runtime_dir(tmp_path))
    assert server.socket.parent == fallback
    try:
        server.ensure_running()
        assert mode(fallback) == 0o700 and fallback.stat().st_uid == os.getuid()
    finally:
        server.stop()


@pytest.mark.parametrize("case", ["symlink", "open to others", "someone else's"])
def test_a_socket_folder_not_ours_alone_is_refused(
    tmp_path: Path, fallback: Path, case: str
) -> None:
    if case == "symlink":
        (tmp_path / "elsewhere").mkdir(mode=0o700)
        fallback.symlink_to(tmp_path / "elsewhere")
    elif case == "open to others":
        fallback.mkdir()
        fallback.chmod(0o777)
    else:
        if os.getuid() != 0:
            pytest.skip("making a folder someone else's needs root")
        fallback.mkdir(mode=0o700)
        os.chown(fallback, 65534, 65534)
    server = EmbeddedRedis(_long_runtime_dir(tmp_path))
    with pytest.raises(ConfigError, match="refusing to put the town's Redis socket there"):
        server.ensure_running()
    assert not server.is_running()
