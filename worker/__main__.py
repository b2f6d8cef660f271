"""`python -m continuity.worker`: the built-in worker the watchdog spawns (home from $CONTINUITY_HOME).

The first heartbeat ("starting") is written before the heavy imports, so the watchdog sees a new worker alive
within milliseconds of spawning it; from then on only the main loop writes it.
"""

import sys

from continuity.worker._early import write_starting_heartbeat

write_starting_heartbeat()

from continuity.worker.main import main  # noqa: E402 - imported after the first heartbeat on purpose

sys.exit(main())
