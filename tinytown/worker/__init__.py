"""The agent worker process: one Celery worker per agent, and its rounds.

- `app`: the process's start-up: the Celery app, the round tasks bound to the
  runtime, the signal handlers (`python -m tinytown.worker --town ROOT AGENT_ID`).
- `runtime`: `WorkerRuntime`, everything one agent's worker knows; rounds run here.
- `runner`: the agent CLI as a subprocess, and the watchdog that kills it with us.
- `prompt`: what the agent CLI reads on its standard input.

Depends on `tinytown.db` and the pure modules only.
"""
