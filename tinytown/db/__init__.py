"""The data layer: the only package that talks to Redis.

Each Redis write sequence has one home here (assigning a task, the backlog, a
round's steps, a worker's runtime hash, recovery), and the Lua scripts live as
`.lua` files in `lua/`, registered once per client (`scripts.py`). Callers pass the
client in (through a `Store`); writers take an optional pipeline so several writes
commit in one MULTI.
"""
