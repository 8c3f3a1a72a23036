"""Operations: the `Town` API and what stands behind it.

Everything a client of a town does (the CLI, a script, a cron job) goes through
`tinytown.ops.town.Town`; the modules here implement its operations on top of
`tinytown.db`. Nothing here imports `redis`; only `control` (remote control) and
`flower` reach Celery.
"""
