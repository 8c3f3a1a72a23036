"""`tt mcp` and `/mcp`: the town as MCP tools for the agents (the official `mcp` SDK)."""
