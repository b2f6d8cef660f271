"""Exit codes and environment variable names both processes (and the container, boot and CLI files) agree on.

Each is defined here once; `worker/_early.py` spells HEARTBEAT_ENV out (it runs before any import: a test checks
that the two agree)."""

from __future__ import annotations

EX_CONFIG = 78  # worker exit code (and the watchdog's, then): the configuration is wrong, restarting cannot help

HOME_ENV = "CONTINUITY_HOME"  # the home, when no --home is given (the watchdog sets it for its worker)
HEARTBEAT_ENV = "CONTINUITY_HEARTBEAT"  # where the worker writes its heartbeat (set by the watchdog)
WATCHDOG_PID_ENV = "CONTINUITY_WATCHDOG_PID"  # the supervising watchdog's pid (set by the watchdog)
SESSION_KEY_ENV = "CONTINUITY_SESSION_KEY"  # the session backups' passphrase (else [session] key_file)
DETACHED_ENV = "CONTINUITY_DETACHED"  # "1": the watchdog runs in the background (no console log)
# Set by `start --detach`: stderr is a pipe to it until the watchdog is up, so it can show why a start failed even
# when nothing can be written (a full disk); then stderr joins stdout (logs/watchdog.out) and the pipe closes.
STARTUP_PIPE_ENV = "CONTINUITY_STARTUP_PIPE"
# "1": a watchdog in the foreground writes its log and the worker's output (each line prefixed "worker: ") to
# stdout as well as to the files: what `docker logs`, `kubectl logs` and journald show. The Dockerfile sets it.
LOG_STDOUT_ENV = "CONTINUITY_LOG_STDOUT"
# Containers set these two (see the Dockerfile): no display there, and no user namespaces for Chromium's sandbox
# under a default seccomp profile (the container is the sandbox). "1", "true" or "yes" turns one on
# (worker/browser/discovery.env_flag).
HEADLESS_ENV = "CONTINUITY_HEADLESS"  # Chromium headless whatever [whatsapp] headless says
NO_SANDBOX_ENV = "CONTINUITY_NO_SANDBOX"  # --no-sandbox also when not root
# Tests (tests/test_structure.py): a file the watchdog rewrites with its sorted sys.modules at each wakeup, to
# show what an idle watchdog has loaded. Unset (always, in use): nothing is written.
MODULES_DUMP_ENV = "CONTINUITY_DEBUG_MODULES"
# [api] keys the environment may set over the config file (config_api.with_api_env checks them by the same rules)
API_HOST_ENV = "CONTINUITY_API_HOST"
API_PORT_ENV = "CONTINUITY_API_PORT"
API_TOKEN_ENV = "CONTINUITY_API_TOKEN"
API_ALLOWED_HOSTS_ENV = "CONTINUITY_API_ALLOWED_HOSTS"
