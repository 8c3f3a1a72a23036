"""Augment Code (`auggie`): its JSON report has Claude Code's shape, so Claude Code's
reader reads it (`output = "claude-json"`)."""

from __future__ import annotations

from tinytown.agent_clis.base import AgentCli, Credentials, Preset, PromptVia


class Auggie(AgentCli):
    name = "auggie"
    description = "Augment Code"
    presets = {"auggie": Preset(
        "auggie --print", PromptVia.FILE, "--instruction-file", output="claude-json",
        output_args="--output-format json", resume_args="--resume {session}",
    )}
    credentials = Credentials(("AUGMENT_SESSION_AUTH",), (".augment/session.json",))
    install = "npm install -g @augmentcode/auggie"
    order = 20


CLI = Auggie()
