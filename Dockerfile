# Continuity in a container: one WhatsApp account (one instance home) per container, the home a volume at /data.
#   docker build -t continuity .          (or: bash scripts/container/build-local.sh, without a registry)
#   docker run -d --name shop1 -v shop1:/data --stop-timeout 40 continuity
#   docker exec shop1 continuity whatsapp qr      (scan it once; the login lives in the volume)
# Settings from the environment: CONTINUITY_SESSION_KEY (session backups), CONTINUITY_API_HOST, CONTINUITY_API_PORT,
# CONTINUITY_API_TOKEN, CONTINUITY_API_ALLOWED_HOSTS; anything else in /data/continuity.toml.
# Give `docker stop` (compose: stop_grace_period, Kubernetes: terminationGracePeriodSeconds) more than
# [watchdog] stop_timeout (10 s): the watchdog stops the worker and its browser before it exits.
ARG BASE=debian:bookworm-slim

FROM ${BASE} AS build
# Versions come from the BASE release and its security updates, not pins that the next point release breaks.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md /src/
COPY watchdog /src/watchdog
COPY worker /src/worker
COPY devtools /src/devtools
# A regular (not editable) install into its own environment; pip itself is not needed at run time.
RUN python3 -m venv /opt/continuity \
    && /opt/continuity/bin/pip install --no-cache-dir --disable-pip-version-check /src \
    && /opt/continuity/bin/pip uninstall --yes pip \
    && /opt/continuity/bin/python -c 'import continuity.watchdog.run, continuity.worker.main'
COPY scripts/container/healthcheck.py /opt/continuity/healthcheck.py

FROM ${BASE}
# Debian's Chromium and its driver (same release), Python, and tini as PID 1 (reaps what the browser leaves).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 chromium chromium-driver tini ca-certificates \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* /usr/share/locale/* \
    && useradd --uid 10001 --user-group --create-home --home-dir /home/continuity --shell /usr/sbin/nologin continuity \
    && install -d -m 0700 -o continuity -g continuity /data
COPY --from=build /opt/continuity /opt/continuity
ENV PATH=/opt/continuity/bin:$PATH \
    CONTINUITY_HOME=/data \
    CONTINUITY_HEADLESS=1 \
    CONTINUITY_NO_SANDBOX=1 \
    CONTINUITY_LOG_STDOUT=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
STOPSIGNAL SIGTERM
# /healthz: 200 while the watchdog runs, the heartbeat is fresh and health is not critical (a QR waiting is fine).
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
    CMD ["python3", "/opt/continuity/healthcheck.py"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["continuity", "--home", "/data", "start"]
