"""`tt doctor` finds each real CLI, its version and that its credentials are set (by
their names, never their values), and the one problem known to stop one of them here:
Claude Code as root without IS_SANDBOX=1."""

from __future__ import annotations

import json
import os

import pytest

from tests.agent_clis.real.clis import DOCTOR, params
from tests.agent_clis.real.towns import Preset
from tests.helpers import tt

pytestmark = pytest.mark.realcli
# `tt doctor` asks every installed CLI its version: a minute or more on a loaded machine
DOCTOR_SECS = 150


@pytest.mark.timeout(2 * DOCTOR_SECS + 30)
@pytest.mark.parametrize("preset", params(DOCTOR), indirect=True)
def test_doctor_reports_the_cli_and_the_root_case(
    preset: Preset, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = preset.town.town.settings.agent.default_cli
    monkeypatch.delenv("IS_SANDBOX", raising=False)
    report = tt("doctor", "--json", cwd=preset.town.root, timeout=DOCTOR_SECS)
    found = {c["name"]: c for c in json.loads(report.out)["clis"]}[name]
    assert found["installed"] and found["version"] and found["used"]
    assert found["credentials_set"] and "stub" not in json.dumps(found)  # names, not values
    if name == "claude" and os.geteuid() == 0:
        assert "as root" in " ".join(found["problems"]) and report.code == 1
        monkeypatch.setenv("IS_SANDBOX", "1")
        sandboxed = tt("doctor", "--json", cwd=preset.town.root, timeout=DOCTOR_SECS)
        claude = {c["name"]: c for c in json.loads(sandboxed.out)["clis"]}["claude"]
        assert claude["problems"] == [] and claude["ready"]
