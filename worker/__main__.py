"""`python -m continuity.worker`: the built-in worker command the watchdog spawns (home from $CONTINUITY_HOME)."""

import sys

from continuity.watchdog.cli import cli

sys.exit(cli(["worker"], prog_name="continuity"))
