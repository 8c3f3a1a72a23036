"""Records, rules and configuration: no sockets, no processes, no files but the config."""
