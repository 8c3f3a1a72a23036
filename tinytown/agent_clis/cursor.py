"""Cursor agent (`cursor-agent`): not on any package registry (a curl installer), so
documented here, not verified by the tests; it takes its prompt as an argument."""

from __future__ import annotations

from tinytown.agent_clis.base import AgentCli, Credentials, Preset, PromptVia


class Cursor(AgentCli):
    name = "cursor"
    description = "Cursor agent"
    presets = {"cursor": Preset("cursor-agent --print --force", PromptVia.ARG)}
    credentials = Credentials(("CURSOR_API_KEY",), (".cursor/cli-config.json",))
    install = "curl https://cursor.com/install -fsS | bash (not on a package registry)"
    order = 70


CLI = Cursor()
