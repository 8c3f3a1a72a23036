"""The supervisor process: keeps agent records true to what their workers do.

- `service`: `Supervisor`, the leader election, the event consumer and the checks
  (`python -m tinytown.supervisor --town ROOT`).

Depends on `tinytown.db` and the pure modules only.
"""
