"""`python -m continuity.watchdog` is the `continuity` command (used by --detach and boot entries)."""

from .cli import main

main()
