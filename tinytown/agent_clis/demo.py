"""Tinytown's demo agent: an offline stand-in that summarizes its prompt, for demos and
trying a town out (no credentials, nothing to install)."""

from __future__ import annotations

import shlex
import sys

from tinytown.agent_clis.base import AgentCli, Preset


class Demo(AgentCli):
    name = "demo"
    description = "Tinytown demo"
    presets = {"demo": Preset(f"{shlex.quote(sys.executable)} -m tinytown.demo_agent")}
    order = 80


CLI = Demo()
