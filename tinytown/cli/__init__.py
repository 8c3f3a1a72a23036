"""The `tt` command line: a thin click layer over `tinytown.ops.Town`.

- `main`: the group, the town and record commands, error printing and exit codes.
- `engine`: process commands (interrupt, kill, worker, supervisor...), loaded lazily.
- `ops`: operations commands (events, logs, reclaim, backlog...), loaded lazily.
- `common`: the per-command context and output helpers.
"""
