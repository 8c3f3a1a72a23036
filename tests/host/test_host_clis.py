"""What a host daemon says it can run (`clis`, `lacks` in its registration, which
placement reads): every agent CLI Tinytown knows, plug-ins included, not only the
built-in ones. The test plug-in tests/plugins/tinytown-echo-cli (scripts/test installs
it) has a preset `echo` whose program is this Python."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest

from tinytown.core.settings import Settings
from tinytown.host.daemon import installed_clis

try:
    distribution("tinytown-echo-cli")
except PackageNotFoundError:
    pytest.skip("scripts/test installs the plug-in: pip install -e"
                " tests/plugins/tinytown-echo-cli", allow_module_level=True)


def test_a_host_counts_a_plugin_cli_it_can_run(tmp_path: Path) -> None:
    found, lacking = installed_clis(Settings(root=tmp_path, town="t"))
    assert "echo" in found and "echo" not in lacking, (found, lacking)
    assert "claude" in found + lacking  # the built-in ones are still listed
