"""This machine: processes, launching, private files, logs, git work trees."""
