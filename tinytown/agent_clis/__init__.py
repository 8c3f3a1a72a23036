"""The agent CLIs Tinytown runs: one module each (see `base.AgentCli`), found by
`registry` among this package's modules and the entry points of the group
`tinytown.agent_clis` (plug-ins)."""

DEFAULT_CLI = "claude"  # `[agent] default_cli` when tinytown.toml does not say
