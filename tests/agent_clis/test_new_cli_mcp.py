"""How opencode, Qwen Code and Cline CLI are given Tinytown's MCP server for a round
(their modules' `configure_mcp`): nothing of the user's is written, and the user's own
MCP servers stay. The real CLIs calling the server's tools: tests/agent_clis/real/test_mcp.py.
"""

from __future__ import annotations

import json
from pathlib import Path

from tinytown.agent_clis import cline, opencode, qwen, registry
from tinytown.agent_clis.base import CliCommand, McpServer

SERVER = McpServer("tinytown", "/usr/bin/python3", ["-m", "tinytown", "mcp"],
                   {"TINYTOWN_AGENT_ID": "a1"})


def _command(name: str) -> CliCommand:
    return CliCommand(name, [name, "--flag"], mcp=registry.of(name).cli.mcp_mode)  # type: ignore[union-attr]


def test_their_mcp_modes_are_known_by_name() -> None:
    for name, mode in (("opencode", "opencode-config"), ("qwen", "qwen-mcp-config"),
                       ("cline", "cline-settings")):
        found = registry.by_mcp(mode)
        assert found is not None and found.name == name


def test_opencode_gets_the_server_in_its_config_content_merged_with_the_users(
        tmp_path: Path) -> None:
    argv = ["opencode", "run"]
    setup = opencode.CLI.configure_mcp(_command("opencode"), argv, {}, SERVER, tmp_path)
    assert setup.argv == argv and not setup.files and not setup.links
    assert json.loads(setup.env["OPENCODE_CONFIG_CONTENT"]) == {"mcp": {"tinytown": {
        "type": "local", "command": ["/usr/bin/python3", "-m", "tinytown", "mcp"],
        "environment": {"TINYTOWN_AGENT_ID": "a1"}}}}
    own = json.dumps({"model": "x/y", "mcp": {"theirs": {"type": "remote", "url": "u"}}})
    setup = opencode.CLI.configure_mcp(_command("opencode"), argv,
                                       {"OPENCODE_CONFIG_CONTENT": own}, SERVER, tmp_path)
    merged = json.loads(setup.env["OPENCODE_CONFIG_CONTENT"])
    assert merged["model"] == "x/y" and set(merged["mcp"]) == {"theirs", "tinytown"}
    # JSONC or anything else it cannot merge into: left as the user set it, no server
    setup = opencode.CLI.configure_mcp(_command("opencode"), argv,
                                       {"OPENCODE_CONFIG_CONTENT": "{// c\n}"}, SERVER, tmp_path)
    assert setup.env == {} and setup.argv == argv


def test_qwen_gets_a_file_of_the_agents_own(tmp_path: Path) -> None:
    setup = qwen.CLI.configure_mcp(_command("qwen"), ["qwen", "--yolo"], {}, SERVER, tmp_path)
    path = tmp_path / "qwen-mcp.json"
    assert setup.argv == ["qwen", "--yolo", "--mcp-config", str(path)]
    assert json.loads(setup.files[path])["mcpServers"]["tinytown"] == {
        "command": "/usr/bin/python3", "args": ["-m", "tinytown", "mcp"],
        "env": {"TINYTOWN_AGENT_ID": "a1"}, "trust": True}


def test_cline_gets_a_copy_of_the_users_mcp_settings_with_the_server(tmp_path: Path) -> None:
    home = tmp_path / "home"
    users = home / ".cline" / "data" / "settings" / "cline_mcp_settings.json"
    users.parent.mkdir(parents=True)
    users.write_text(json.dumps({"mcpServers": {"theirs": {"transport": {
        "type": "stdio", "command": "theirs"}}}}))
    state = tmp_path / "state"
    argv = ["cline", "--json", " "]
    setup = cline.CLI.configure_mcp(_command("cline"), argv, {"HOME": str(home)}, SERVER,
                                    state)
    path = state / "cline_mcp_settings.json"
    assert setup.argv == argv and setup.env == {"CLINE_MCP_SETTINGS_PATH": str(path)}
    servers = json.loads(setup.files[path])["mcpServers"]
    assert set(servers) == {"theirs", "tinytown"}
    assert servers["tinytown"]["transport"] == {
        "type": "stdio", "command": "/usr/bin/python3", "args": ["-m", "tinytown", "mcp"],
        "env": {"TINYTOWN_AGENT_ID": "a1"}}
    assert servers["tinytown"]["timeout"] >= 60  # else a slow-starting server is left out
    # where the user pointed Cline: CLINE_MCP_SETTINGS_PATH, CLINE_DATA_DIR, CLINE_DIR
    elsewhere = tmp_path / "mine.json"
    elsewhere.write_text(json.dumps({"mcpServers": {"mine": {}}}))
    for env in ({"CLINE_MCP_SETTINGS_PATH": str(elsewhere)},):
        setup = cline.CLI.configure_mcp(_command("cline"), argv, env, SERVER, state)
        assert set(json.loads(setup.files[path])["mcpServers"]) == {"mine", "tinytown"}
    data = tmp_path / "data"
    (data / "settings").mkdir(parents=True)
    (data / "settings" / "cline_mcp_settings.json").write_text(
        json.dumps({"mcpServers": {"data": {}}}))
    for env in ({"CLINE_DATA_DIR": str(data)}, {"CLINE_DIR": str(tmp_path), "HOME": "/nope"}):
        setup = cline.CLI.configure_mcp(_command("cline"), argv, env, SERVER, state)
        assert set(json.loads(setup.files[path])["mcpServers"]) == {"data", "tinytown"}, env
