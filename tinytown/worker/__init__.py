"""The agent worker process: one Celery worker per agent, and its rounds.

- `agent_worker`: the process's start-up: the Celery app, the round tasks bound to the
  runtime, the signal handlers (`python -m tinytown.worker --town ROOT AGENT_ID`).
- `lifecycle`: `WorkerRuntime`, the process's life: lease, heartbeat, hand-off, the
  Redis outage, drain and shutdown; the Celery jobs, whose rounds it loops over.
- `pipeline`: one round: a batch from the inbox, direct answers, and the CLI run as a
  pipeline of named steps (`steps`), ending in a `RoundResult` the lifecycle acts on.
- `state`: `WorkerState` (what changes while the process serves), `WorkerContext`
  (what a round needs of its worker), `RoundContext` (one round, step by step).
- `commits`: the agent's worktree on this host and its round commits.
- `usage_gates`, `sessions`, `mcp_setup`: the budget and usage-limit steps, the CLI session
  a round continues, the MCP server a round's CLI is given.
- `runner`: the agent CLI as a subprocess, and the watchdog that kills it with us.
- `prompt`: what the agent CLI reads on its standard input.

Depends on `tinytown.db` and the pure modules only.
"""
