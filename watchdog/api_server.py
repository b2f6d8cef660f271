"""The watchdog's API in the watchdog process: its token, where it listens (run/api.json), start and stop.

The application itself (api.ApiApp: routes, dashboard) is imported on the first request, not at start, so an API
nobody calls costs the long-running watchdog little memory.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ._http import App, HttpServer, Request, Response
from .instance import API_TOKEN_ENV, Home, HostGuard

if TYPE_CHECKING:
    from .instance import Config, EventLog
    from .supervisor import Supervisor

logger = logging.getLogger("continuity.api")


def ensure_token(home: Home, config: Config) -> tuple[str, Path | None]:
    """The API token and the file holding it: `[api] token`, else run/api_token (generated once, mode 0600)."""
    if config.api.token:
        return config.api.token, None
    path = home.api_token_file
    try:
        if not path.is_file():  # a device or a FIFO (a link to /dev/full) would be read forever: make a new one
            raise FileNotFoundError(path)
        with open(path, encoding="ascii") as handle:
            existing = handle.read(4096).strip()
        if len(existing) >= 32:
            os.chmod(path, 0o600)
            return existing, path
    except (OSError, UnicodeDecodeError):
        pass
    token = os.urandom(24).hex()
    home.run_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(token + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return token, path


class _LazyApp:
    """Builds the real application on the first request, so an API nobody calls costs the watchdog little.

    `light` routes (GET /metrics) are answered here for an allowed Host without building it: a scraper every few
    seconds must not load the dashboard's modules into the watchdog. Anything else (a foreign Host, another
    method) goes to the real application, which refuses and records it."""

    def __init__(self, factory: Callable[[], App], *, light: dict[str, App] | None = None) -> None:
        self._factory, self._lock = factory, threading.Lock()
        self._app: App | None = None
        self._light = light or {}
        self._guard: HostGuard | None = None  # set once the port is known; until then everything goes to the app

    def __call__(self, request: Request) -> Response:
        light, guard = self._light.get(request.path), self._guard
        if light and guard and request.method in ("GET", "HEAD") and guard.allows(request.headers.get("host")):
            return light(request)
        if self._app is None:
            with self._lock:
                if self._app is None:
                    self._app = self._factory()
        return self._app(request)

    def set_guard(self, guard: HostGuard) -> None:
        """The Host guard of the light routes (the real application builds its own, the same)."""
        self._guard = guard


class ApiServer:
    """The running API: its server thread, URL and info file (run/api.json)."""

    def __init__(self, server: HttpServer, info_file: Path, url: str) -> None:
        self.server, self.info_file, self.url = server, info_file, url

    def stop(self) -> None:
        self.server.stop()
        self.info_file.unlink(missing_ok=True)


def start_api(
    home: Home, config: Config, supervisor: Supervisor, *, events: EventLog, io_timeout_s: float = 10.0
) -> ApiServer | None:
    """Serve the API for `supervisor`; None (logged, and an event) when disabled or the port cannot be bound.

    A request must arrive whole (head and body) within `io_timeout_s` of its connection, else 408 and close; the
    caps on open connections (in all, and per client address) are _http's defaults."""
    cfg = config.api
    if not cfg.enabled:
        return None
    token, token_file = ensure_token(home, config)
    bound: list[int] = []

    def build() -> App:
        from .api import ApiApp

        return ApiApp(home, config, supervisor=supervisor, events=events, token=token, bound=(cfg.host, bound[0]))

    def metrics(_request: Request) -> Response:
        from .metrics import metrics_response

        return metrics_response(home, supervisor)

    light = _LazyApp(build, light={"/metrics": metrics})
    try:
        server = HttpServer(cfg.host, cfg.port, light, io_timeout_s=io_timeout_s)
    except OSError as exc:
        logger.error(
            "API not started: cannot listen on %s:%d (%s). The watchdog keeps supervising without the API; "
            "free the port or set [api] port in %s.",
            cfg.host, cfg.port, exc.strerror or exc, home.config_file,
        )  # fmt: skip
        events.emit("api_unavailable", host=cfg.host, port=cfg.port, error=str(exc.strerror or exc))
        return None
    bound.append(server.port)
    light.set_guard(HostGuard(cfg.host, server.port, cfg.allowed_hosts))  # port 0: the one the kernel gave
    shown_host = f"[{cfg.host}]" if ":" in cfg.host else cfg.host
    url = f"http://{shown_host}:{server.port}/"
    from_env = bool(os.environ.get(API_TOKEN_ENV, "").strip())  # config_api.with_api_env put it there
    source = f"${API_TOKEN_ENV}" if from_env else "[api] token in the config"
    info = {"url": url, "pid": os.getpid(), "token_file": str(token_file) if token_file else None}
    info["token_source"] = str(token_file) if token_file else source
    info_file = home.api_info_file
    info_file.write_text(json.dumps(info), encoding="utf-8")
    server.start()
    logger.info("API and dashboard on %s (token for actions: %s)", url, info["token_source"])
    events.emit("api_started", url=url, token_file=info["token_file"])
    return ApiServer(server, info_file, url)
