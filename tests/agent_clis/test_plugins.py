"""A package adds an agent CLI through the entry point group `tinytown.agent_clis`: the
test plug-in tests/plugins/tinytown-echo-cli (scripts/test installs it) runs real
worker rounds, its own reader reads its report, and `tt doctor` says where it came
from. Looking for plug-ins costs import time: `tt send` never does."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution

import pytest

from tests.helpers import TownFixture
from tinytown.core.models import TaskState

try:
    distribution("tinytown-echo-cli")
except PackageNotFoundError:
    pytest.skip("scripts/test installs the plug-in: pip install -e"
                " tests/plugins/tinytown-echo-cli", allow_module_level=True)


def test_a_plugin_cli_runs_rounds_read_by_its_own_reader(town: TownFixture) -> None:
    r = town.tt("spawn", "e", "--cli", "echo")
    assert r.code == 0, r.err
    ok = town.town.assign("e", "ECHO: hello from the plug-in")
    town.wait_task(ok, TaskState.COMPLETED, TaskState.FAILED, timeout=60)
    task = town.town.store.require_task(ok)
    # the answer is what the reader made of its report, not the CLI's stdout
    assert task.state == TaskState.COMPLETED and task.result == \
        "echo heard: hello from the plug-in", task
    agent = town.town.resolve("e")
    assert agent.usage is not None and agent.usage.output_tokens == len(
        "hello from the plug-in")
    shown = town.tt("logs", "e").out  # its events, as its module shows them
    assert "» heard hello from the plug-in" in shown, shown
    bad = town.town.assign("e", "ECHO: TROUBLE ahead")
    town.wait_task(bad, TaskState.COMPLETED, TaskState.FAILED, timeout=60)
    failed = town.town.store.require_task(bad)
    assert failed.state == TaskState.FAILED and "the echo is lost" in (failed.result or ""), \
        failed


def test_doctor_says_where_each_cli_came_from(town: TownFixture) -> None:
    r = town.tt("doctor", "--json")
    clis = {c["name"]: c for c in json.loads(r.out)["clis"]}
    assert clis["echo"]["origin"] == "tinytown-echo-cli 0.1.0"
    assert clis["echo"]["credentials_needed"] and "$ECHO_TOKEN" in \
        clis["echo"]["credentials_needed"]
    assert clis["claude"]["origin"] == "built in" and clis["codex-mini"]["origin"] == \
        "built in"
    text = town.tt("doctor").out
    assert "tinytown-echo-cli 0.1.0" in text


def test_plugins_are_looked_for_only_for_a_name_not_built_in() -> None:
    code = (
        "import sys\n"
        "from tinytown.agent_clis import registry\n"
        "from tinytown.core.settings import Settings\n"
        "from pathlib import Path\n"
        "from tinytown.core.presets import resolve_cli\n"
        "s = Settings.from_mapping(Path('.'), {'town': {'name': 't'}}, {})\n"
        "resolve_cli(s, 'claude'); resolve_cli(s, 'python3 -m x')\n"
        "assert registry.plugins.cache_info().currsize == 0, 'scanned for a built-in'\n"
        "assert resolve_cli(s, 'echo').output == 'echo-json'\n"
        "assert registry.plugins.cache_info().currsize == 1\n"
        "import tinytown.cli.main\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr


def test_tt_send_loads_no_agent_cli() -> None:
    """`tt send`'s path imports no CLI module and reads no entry points."""
    code = (
        "import sys\n"
        "from tinytown.cli import main\n"
        "ctx = main.cli.make_context('tt', ['send', 'x', 'hi'])\n"
        "main.cli.get_command(ctx, 'send')\n"
        "bad = [m for m in sys.modules if m.startswith('tinytown.agent_clis.') or\n"
        "       m == 'importlib.metadata']\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
