"""The town: `tt init`, the embedded redis-server, finding the town, reaching Redis."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.helpers import (
    RedisServer,
    TownFixture,
    one_line_error,
    session_tmp,
    stop_redis,
    tt,
    wait_until,
)
from tinytown.core.errors import EXIT_REDIS_UNREACHABLE
from tinytown.db.embedded import find_redis_server


def _external(server: RedisServer) -> dict[str, str]:
    return {"REDIS_URL": server.url}


# --- tt init --------------------------------------------------------------------------


def test_init_creates_the_town(tmp_path: Path, redis_server: RedisServer) -> None:
    folder = tmp_path / "shop"
    folder.mkdir()
    r = tt("init", "--name", "shop-1", cwd=folder, env=_external(redis_server))
    assert r.code == 0, r.err
    assert "shop-1" in r.out
    config = tomllib.loads((folder / "tinytown.toml").read_text())
    assert config["town"]["name"] == "shop-1"
    assert "url" not in config.get("redis", {})  # the template leaves the embedded default
    assert (folder / ".tt").is_dir()
    assert (folder / ".gitignore").read_text().splitlines() == [".tt/"]
    # the town works right away
    assert tt("list", cwd=folder, env=_external(redis_server)).code == 0


def test_init_appends_to_an_existing_gitignore_once(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    (tmp_path / ".gitignore").write_text("node_modules\n*.pyc")
    assert tt("init", "--name", "g1", cwd=tmp_path, env=_external(redis_server)).code == 0
    assert (tmp_path / ".gitignore").read_text() == "node_modules\n*.pyc\n.tt/\n"
    other = tmp_path / "other"
    other.mkdir()
    (other / ".gitignore").write_text("/.tt\n")
    assert tt("init", "--name", "g2", "--nested", cwd=other,
              env=_external(redis_server)).code == 0
    assert (other / ".gitignore").read_text() == "/.tt\n"


def test_init_default_name_is_the_folder_outside_git(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    folder = tmp_path / "my project!"
    folder.mkdir()
    # git must not find a repository above the test's folder, wherever that is
    env = {**_external(redis_server), "GIT_CEILING_DIRECTORIES": str(tmp_path)}
    assert tt("init", cwd=folder, env=env).code == 0
    assert tomllib.loads((folder / "tinytown.toml").read_text())["town"]["name"] == "my-project"


def test_init_default_name_is_repo_and_branch_in_git(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    repo = tmp_path / "webapp"
    subprocess.run(["git", "init", "-q", "-b", "feature/login", str(repo)], check=True)
    r = tt("init", cwd=repo, env=_external(redis_server))
    assert r.code == 0, r.err
    assert tomllib.loads((repo / "tinytown.toml").read_text())["town"]["name"] == (
        "webapp-feature-login")
    # in a subfolder of the repository the name is the repository's, too (a town
    # inside a town only with --nested)
    sub = repo / "services" / "api"
    sub.mkdir(parents=True)
    assert tt("init", "--nested", cwd=sub, env=_external(redis_server)).code == 0
    assert tomllib.loads((sub / "tinytown.toml").read_text())["town"]["name"] == (
        "webapp-feature-login")


@pytest.mark.parametrize("name", ["bad name", "a:b", "x" * 65, ".hidden", "-dash", "tt/x", ""])
def test_init_refuses_an_invalid_name_and_creates_nothing(
    tmp_path: Path, redis_server: RedisServer, name: str
) -> None:
    r = tt("init", f"--name={name}", cwd=tmp_path, env=_external(redis_server))
    line = one_line_error(r, 2)
    if name:
        assert "invalid town name" in line
    assert list(tmp_path.iterdir()) == []


def test_init_twice_is_refused(tmp_path: Path, redis_server: RedisServer) -> None:
    assert tt("init", "--name", "once", cwd=tmp_path, env=_external(redis_server)).code == 0
    before = (tmp_path / "tinytown.toml").read_text()
    r = tt("init", "--name", "twice", cwd=tmp_path, env=_external(redis_server))
    assert "already" in one_line_error(r, 1)
    assert (tmp_path / "tinytown.toml").read_text() == before


def test_init_with_unreachable_redis_creates_nothing(tmp_path: Path) -> None:
    r = tt("init", "--name", "nope", cwd=tmp_path, env={"REDIS_URL": "redis://127.0.0.1:1/0"})
    assert "127.0.0.1:1" in one_line_error(r, EXIT_REDIS_UNREACHABLE)
    assert list(tmp_path.iterdir()) == []


# --- the embedded redis-server --------------------------------------------------------


def _redis_pid(root: Path) -> int | None:
    try:
        pid = int((root / ".tt" / "redis.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _is_redis(pid) else None


def _is_redis(pid: int) -> bool:
    try:
        return b"redis-server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


@pytest.fixture
def embedded_root() -> Iterator[Path]:
    """A folder with a short path (the socket must fit AF_UNIX); its server is stopped after."""
    assert "REDIS_URL" not in os.environ
    root = session_tmp("tt-e")  # swept at the session's end, however it ends
    pids: set[int] = set()
    try:
        yield root
    finally:
        pid = _redis_pid(root)
        if pid:
            pids.add(pid)
        if (root / "tinytown.toml").exists():
            tt("down", cwd=root, timeout=30)
        for pid in pids:
            if _is_redis(pid):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)


def _client(root: Path) -> redis.Redis:
    return redis.Redis(unix_socket_path=str(root / ".tt" / "redis.sock"), decode_responses=True)


def test_embedded_redis_lifecycle(embedded_root: Path) -> None:
    root = embedded_root
    r = tt("init", "--name", "emb", cwd=root)
    assert r.code == 0, r.err
    sock = root / ".tt" / "redis.sock"
    assert f"unix://{sock}" in r.out
    assert "url" not in tomllib.loads((root / "tinytown.toml").read_text()).get("redis", {})
    pid = _redis_pid(root)
    assert pid is not None and sock.is_socket()

    with _client(root) as client:
        config = {k: client.config_get(k)[k] for k in
                  ("port", "unixsocket", "appendonly", "appendfsync", "dir", "daemonize")}
    assert config == {"port": "0", "unixsocket": str(sock), "appendonly": "yes",
                      "appendfsync": "everysec", "dir": str(root / ".tt"), "daemonize": "yes"}
    assert any(p.name.startswith("appendonly") for p in (root / ".tt").iterdir())

    assert tt("spawn", "alice", "--no-start", cwd=root).code == 0
    r = tt("down", cwd=root)
    assert r.code == 0, r.err
    assert "redis stopped" in r.out
    assert not _is_redis(pid)
    assert not sock.exists() and not (root / ".tt" / "redis.pid").exists()

    # the next command starts it again, and the data came back from the AOF
    r = tt("list", "--json", cwd=root)
    assert r.code == 0, r.err
    assert '"name": "alice"' in r.out
    assert _redis_pid(root) not in (None, pid)


def test_embedded_redis_survives_a_crash(embedded_root: Path) -> None:
    root = embedded_root
    assert tt("init", "--name", "crash", cwd=root).code == 0
    assert tt("spawn", "bob", "--no-start", cwd=root).code == 0
    pid = _redis_pid(root)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not _is_redis(pid), 10, "redis-server to die")
    # the crash left its pid file and socket behind
    assert (root / ".tt" / "redis.pid").exists() and (root / ".tt" / "redis.sock").exists()
    r = tt("list", "--json", cwd=root)
    assert r.code == 0, r.err
    assert '"name": "bob"' in r.out
    new = _redis_pid(root)
    assert new is not None and new != pid


def test_embedded_redis_with_a_stale_pid_file_of_another_program(embedded_root: Path) -> None:
    root = embedded_root
    assert tt("init", "--name", "stale", cwd=root).code == 0
    pid = _redis_pid(root)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not _is_redis(pid), 10, "redis-server to die")
    (root / ".tt" / "redis.pid").write_text(f"{os.getpid()}\n")  # alive, but not redis
    r = tt("status", cwd=root)
    assert r.code == 0, r.err
    assert _redis_pid(root) not in (None, pid, os.getpid())


# --- finding the town -----------------------------------------------------------------


def test_commands_walk_up_to_the_town(town: TownFixture) -> None:
    assert town.tt("spawn", "alice", "--no-start").code == 0
    deep = town.root / "src" / "pkg" / "deeper"
    deep.mkdir(parents=True)
    r = tt("list", "--json", cwd=deep)
    assert r.code == 0, r.err
    assert '"name": "alice"' in r.out


def test_town_option_and_environment(town: TownFixture, tmp_path: Path) -> None:
    assert town.tt("spawn", "alice", "--no-start").code == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for args in (["--town", str(town.root)], [f"--town={town.root / 'sub'}"]):
        (town.root / "sub").mkdir(exist_ok=True)
        r = tt(*args, "list", "--json", cwd=elsewhere)
        assert r.code == 0, r.err
        assert '"name": "alice"' in r.out
    r = tt("list", "--json", cwd=elsewhere, env={"TINYTOWN_TOWN_ROOT": str(town.root)})
    assert r.code == 0 and '"name": "alice"' in r.out
    r = tt("--town", str(tmp_path / "missing"), "list", cwd=elsewhere)
    assert "missing" in one_line_error(r)


@pytest.mark.parametrize("command", [
    ["list"], ["status"], ["send", "alice", "hi"], ["task", "list"], ["inbox"],
    ["spawn", "alice", "--no-start"], ["assign", "alice", "x"], ["migrate"], ["reset"],
    ["down"],
])
def test_outside_any_town(tmp_path: Path, command: list[str]) -> None:
    r = tt(*command, cwd=tmp_path)
    assert "not inside a town" in one_line_error(r)
    assert r.out == ""
    assert list(tmp_path.iterdir()) == []


# --- reaching Redis -------------------------------------------------------------------


def _town_with_url(folder: Path, url: str | None) -> Path:
    folder.mkdir()
    redis_section = f'[redis]\nurl = "{url}"\n' if url else ""
    (folder / "tinytown.toml").write_text(f'[town]\nname = "far"\n{redis_section}')
    return folder


@pytest.mark.parametrize("url, where", [
    ("redis://127.0.0.1:1", "redis://127.0.0.1:1"),
    ("redis://127.0.0.1:1/3", "redis://127.0.0.1:1/3"),
    ("unix:///nonexistent/dir/redis.sock", "/nonexistent/dir/redis.sock"),
])
def test_unreachable_redis_from_the_config(tmp_path: Path, url: str, where: str) -> None:
    root = _town_with_url(tmp_path / "far", url)
    for command in (["list"], ["send", "a", "hi"], ["spawn", "a", "--no-start"]):
        r = tt(*command, cwd=root)
        line = one_line_error(r, EXIT_REDIS_UNREACHABLE)
        assert where in line, line


def test_redis_url_in_the_environment_wins(tmp_path: Path, redis_server: RedisServer) -> None:
    root = _town_with_url(tmp_path / "far", redis_server.url)
    assert tt("list", cwd=root).code == 0
    r = tt("list", cwd=root, env={"REDIS_URL": "redis://127.0.0.1:1/0"})
    assert "redis://127.0.0.1:1/0" in one_line_error(r, EXIT_REDIS_UNREACHABLE)
    # and with REDIS_URL set, nothing is started for the town
    root2 = _town_with_url(tmp_path / "near", None)
    r = tt("list", cwd=root2, env={"REDIS_URL": "redis://127.0.0.1:1/0"})
    one_line_error(r, EXIT_REDIS_UNREACHABLE)
    assert not (root2 / ".tt" / "redis.sock").exists()


@pytest.mark.parametrize("url", [
    "redis://:secret@127.0.0.1:1/0",
    "redis://user:secret@127.0.0.1:1/0",
    "rediss://user:secret@127.0.0.1:1/0",
    "redis://127.0.0.1:1/0?password=secret",
])
def test_passwords_never_shown(tmp_path: Path, url: str) -> None:
    root = _town_with_url(tmp_path / "far", url)
    for env in ({}, {"REDIS_URL": url}):
        r = tt("list", cwd=root, env=env)
        line = one_line_error(r, EXIT_REDIS_UNREACHABLE)
        assert "secret" not in r.out + r.err
        assert "127.0.0.1:1" in line and "***" in line
    r = tt("init", "--name", "x", cwd=tmp_path, env={"REDIS_URL": url})
    one_line_error(r, EXIT_REDIS_UNREACHABLE)
    assert "secret" not in r.out + r.err


@pytest.fixture
def password_redis() -> Iterator[RedisServer]:
    """A private redis-server that requires the password s3cr3t-pw."""
    folder = session_tmp("ttp-")
    sock = folder / "redis.sock"
    proc = subprocess.Popen(
        [find_redis_server(), "--port", "0", "--unixsocket", str(sock), "--dir", str(folder),
         "--save", "", "--appendonly", "no", "--requirepass", "s3cr3t-pw"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    server = RedisServer(sock, folder, proc)

    def answers() -> bool:
        try:
            with redis.Redis(unix_socket_path=str(sock), password="s3cr3t-pw") as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    try:
        wait_until(answers, 10, "the password redis-server to start")
        yield server
    finally:
        stop_redis(server)


def test_redis_with_a_password(tmp_path: Path, password_redis: RedisServer) -> None:
    good = f"unix://:s3cr3t-pw@{password_redis.socket}"
    folder = tmp_path / "pw"
    folder.mkdir()
    r = tt("init", "--name", "pw", cwd=folder, env={"REDIS_URL": good})
    assert r.code == 0, r.err
    assert "s3cr3t-pw" not in r.out + r.err and "***" in r.out
    r = tt("status", cwd=folder, env={"REDIS_URL": good})
    assert r.code == 0, r.err
    assert "s3cr3t-pw" not in r.out + r.err and "***" in r.out
    r = tt("status", "--json", cwd=folder, env={"REDIS_URL": good})
    assert r.code == 0 and "s3cr3t-pw" not in r.out
    for bad in (f"unix://:wrong-pw@{password_redis.socket}", password_redis.url):
        r = tt("list", cwd=folder, env={"REDIS_URL": bad})
        line = one_line_error(r, EXIT_REDIS_UNREACHABLE)
        assert str(password_redis.socket) in line
        assert "wrong-pw" not in r.err and "s3cr3t-pw" not in r.err


# --- tt --help --------------------------------------------------------------------------

# every command `tt` had when the help was grouped by topic: none may go missing
COMMANDS = {
    "assign", "auth", "backlog", "branch", "budget", "close", "diff", "doctor", "down",
    "events", "flower", "history", "host", "hosts", "inbox", "init", "interrupt", "kill",
    "list", "logs", "mcp", "merge", "migrate", "mission", "plan", "prune", "reclaim",
    "recover", "reset", "approve", "reject", "reply", "review",
    "restart", "restore", "resume", "save", "send", "serve", "show", "spawn", "status", "stop",
    "supervisor", "task", "up", "usage", "wait", "worker",
}
SPEC_COMMANDS = {"spawn", "interrupt", "resume", "close", "wait", "kill", "migrate"}


def test_help_lists_every_command_under_its_topic(tmp_path: Path) -> None:
    """`tt --help` groups the commands by topic, as `gh` and `docker` do: each section
    lists its commands in its order, and every command is in exactly one section."""
    from tinytown.cli.main import LAZY_COMMANDS, SECTIONS

    r = tt("--help", cwd=tmp_path)
    assert r.code == 0, r.err
    listed: dict[str, list[str]] = {}
    section = None
    for line in r.out.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            section = line[:-1]
            listed[section] = []
        elif section not in (None, "Options") and line.startswith("  "):
            listed[section].append(line.split()[0])
    listed.pop("Options", None)
    assert list(listed) == ["Town", "Agents", "Messages", "Tasks", "Missions", "Control",
                            "Monitoring", "Recovery", "Spend", "Hosts", "Git", "Serve"]
    assert listed == {title: list(names) for title, names in SECTIONS.items()}
    every = [name for names in listed.values() for name in names]
    assert len(every) == len(set(every))
    assert set(every) == COMMANDS == set(LAZY_COMMANDS) and SPEC_COMMANDS <= COMMANDS
