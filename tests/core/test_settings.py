"""Settings from tinytown.toml: defaults, constraints, and one-line errors naming the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tinytown.core.errors import ConfigError
from tinytown.core.settings import BUILTIN_ROLES, Settings


def _load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Settings:
    (tmp_path / "tinytown.toml").write_text(text + '\n[town]\nname = "t"\n')
    return Settings.load(tmp_path, env or {})


def test_defaults_and_derived_paths(tmp_path: Path) -> None:
    s = _load(tmp_path, "")
    assert (s.root, s.town, s.redis_url, s.embedded) == (tmp_path.resolve(), "t", None, True)
    assert s.runtime_dir == tmp_path.resolve() / ".tt" and s.logs_dir == s.runtime_dir / "logs"
    assert (s.agent.default_cli, s.agent.round_timeout_secs, s.agent.idle_timeout_secs,
            s.agent.context_rounds) == ("claude", 3600, 0, 3)
    assert (s.supervisor.heartbeat_timeout_secs, s.supervisor.heartbeat_interval_secs,
            s.supervisor.autostart) == (15, 5, True)
    assert (s.flower.address, s.flower.port, s.flower.basic_auth) == ("127.0.0.1", 5555, None)
    assert set(s.known_roles()) == set(BUILTIN_ROLES)


def test_tables_are_read(tmp_path: Path) -> None:
    s = _load(tmp_path, """
[redis]
url = "redis://localhost:6379/0"
[agent]
round_timeout_secs = 90
context_rounds = 0
[supervisor]
heartbeat_interval_secs = 3
autostart = false
[roles.docs]
description = "Writes docs"
cli = "codex"
[agent_clis.mybot]
command = "python3 bot.py"
env = { MODE = "review" }
""")
    assert s.redis_url == "redis://localhost:6379/0" and not s.embedded
    assert s.agent.round_timeout_secs == 90.0 and s.agent.context_rounds == 0
    assert s.supervisor.heartbeat_interval_secs == 3 and s.supervisor.autostart is False
    assert s.known_roles()["docs"].cli == "codex" and "worker" in s.known_roles()
    assert s.agent_clis["mybot"].command == "python3 bot.py"
    assert s.agent_clis["mybot"].env == {"MODE": "review"}
    assert _load(tmp_path, "", {"REDIS_URL": "redis://other"}).redis_url == "redis://other"


@pytest.mark.parametrize("text, message", [
    ("[agent]\nround_timeout_secs = 0", "agent.round_timeout_secs: Expected `float` > 0"),
    ("[agent]\nidle_timeout_secs = -1", "agent.idle_timeout_secs: Expected `float` >= 0"),
    ("[agent]\ncontext_rounds = -1", "agent.context_rounds: Expected `int` >= 0"),
    ("[supervisor]\nheartbeat_interval_secs = 0", "supervisor.heartbeat_interval_secs:"),
    ("[supervisor]\nheartbeat_interval_secs = 1.5", "supervisor.heartbeat_interval_secs:"),
    ("[flower]\nport = 70000", "flower.port: Expected `int` <= 65535"),
    ("[agent]\nround_timeout = 5", "agent.round_timeout: unknown key"),
    ("colour = 'blue'", "colour: unknown key"),
    ("root = '/elsewhere'", "root: unknown key"),
    ("[roles.docs]\nmodel = 'x'", "model: unknown key"),
    ("[agent_clis.bot]\nworkdir = '.'", "missing required field `command`"),
])
def test_invalid_settings_are_one_line_config_errors(
    tmp_path: Path, text: str, message: str,
) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text)
    error = str(info.value)
    assert error.startswith(f"{tmp_path / 'tinytown.toml'}: ") and "\n" not in error
    assert message in error, error


@pytest.mark.parametrize("data", [{}, {"town": {"name": ""}}, {"town": {"name": "-x"}}])
def test_town_name_is_required_and_checked(tmp_path: Path, data: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        Settings.from_mapping(tmp_path, data, {})


def test_numbers_written_as_text_still_read(tmp_path: Path) -> None:
    s = _load(tmp_path, '[agent]\nround_timeout_secs = "10"\n[flower]\nport = 8080.0')
    assert s.agent.round_timeout_secs == 10.0 and s.flower.port == 8080


@pytest.mark.parametrize("module", ["tinytown.cli.main", "tinytown.worker.agent_worker"])
def test_cli_and_worker_do_not_import_pydantic(module: str) -> None:
    # pydantic cost ~85 ms on every `tt` call and ~9 MiB in every worker
    code = f"import sys, {module}; print([m for m in sys.modules if m.startswith('pydantic')])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize(("args", "topic"), [(["list"], "agents"),
                                           (["send", "a", "hello"], "messages")])
def test_a_short_tt_command_imports_only_what_it_uses(
    tmp_path: Path, args: list[str], topic: str
) -> None:
    # what `tt list` or `tt send` loads to parse and start a command (outside a town it
    # stops there): its own topic's module, none of the others
    code = (
        f"import sys\nfrom tinytown.cli.main import cli\n"
        f"try:\n    cli.main({args!r}, standalone_mode=False)\nexcept Exception:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in"
        " ('rich', 'celery', 'kombu', 'pydantic') or m.startswith('tinytown.cli.')"
        f" and m not in ('tinytown.cli.main', 'tinytown.cli.common', 'tinytown.cli.{topic}')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60, cwd=tmp_path).stdout
    assert out.strip() == "[]"


def test_lazy_commands_are_the_ones_their_modules_define() -> None:
    from importlib import import_module

    from tinytown.cli.main import LAZY_COMMANDS, cli

    defined = {c.name: m for m in set(LAZY_COMMANDS.values()) for c in import_module(m).COMMANDS}
    assert defined == LAZY_COMMANDS
    assert set(LAZY_COMMANDS) <= set(cli.list_commands(None))  # type: ignore[arg-type]
