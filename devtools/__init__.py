"""Continuity's development tools: the WhatsApp Web simulator, the local rig (simulator + home + real watchdog)
and the demo. Never imported by the worker or the watchdog process; `continuity simulator` and `continuity demo`
(watchdog/cli/dev.py) load them when run."""
