"""The host daemon (`tt host`): one per machine, placing, starting, watching and
restarting the agent workers of a town (see `tinytown.host.daemon`)."""
