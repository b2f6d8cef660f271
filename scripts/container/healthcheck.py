"""Container health check: exit 0 when the watchdog's /healthz answers 200, else 1 (stdlib only, no token).

/healthz is 200 while the watchdog runs, the heartbeat is fresh and health is not critical ("ok" or "degraded":
a QR waiting for its scan is not a reason to restart), 503 otherwise. The port is $CONTINUITY_API_PORT (default
8765); the request goes to 127.0.0.1 with Host: localhost, which the API's Host guard always accepts.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def check(port: str, timeout_s: float = 8.0) -> tuple[bool, str]:
    """(healthy, what /healthz said or why it could not be asked)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy
    request = urllib.request.Request(f"http://127.0.0.1:{port}/healthz", headers={"Host": "localhost"})
    try:
        with opener.open(request, timeout=timeout_s) as answer:
            return answer.status == 200, answer.read(200).decode("utf-8", "replace").strip()
    except urllib.error.HTTPError as exc:
        return False, f"HTTP {exc.code}: {exc.read(200).decode('utf-8', 'replace').strip()}"
    except OSError as exc:
        return False, f"no answer on port {port}: {exc}"


def main() -> int:
    healthy, said = check(os.environ.get("CONTINUITY_API_PORT") or "8765")
    print(said)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
