"""The `tt` command line: a thin click layer over `tinytown.ops.Town`.

- `main`: the group, the table of commands by topic (loaded lazily), error printing.
- one module per topic: `town`, `agents`, `messages`, `tasks` (with `waiting`),
  `control`, `monitor`, `recovery`, `usage`, `hosts`, `git`, `serve`, `doctor`.
- `common`: the per-command context and output helpers (`emit`, `say`, tables).
"""
