"""The pages worth opening on the Prometheus and Alertmanager binaries native mode runs.

Debian's packages differ from upstream's: Prometheus 2.42 is built without
its React UI and serves the classic pages under ``/classic/`` (``/alerts``
is a 404 there), and Alertmanager has no web UI at all (its root page says
so), leaving the HTTP API and ``amtool``. So the pages are found by asking
the running binary, each probe bounded in time.
"""

from __future__ import annotations

import urllib.error
import urllib.request

PROBE_TIMEOUT = 2.0


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT) as response:
            return int(response.status), response.read(65536).decode("utf-8", "replace")
    except urllib.error.HTTPError as err:
        err.close()
        return int(err.code), ""
    except (urllib.error.URLError, OSError):
        return 0, ""


def prometheus_pages(base: str) -> dict[str, str]:
    """Prometheus' graph, alerts and targets pages, classic or not as the binary serves them."""
    if _get(base + "/alerts")[0] != 200 and _get(base + "/classic/alerts")[0] == 200:
        base += "/classic"
    return {page: f"{base}/{page}" for page in ("graph", "alerts", "targets")}


def alertmanager_pages(base: str) -> list[str]:
    """Where to see Alertmanager's alerts: its UI, or (without one) its API and ``amtool``."""
    status, body = _get(base + "/")
    if status == 200 and "script.js" in body:
        return [f"alerts {base}/#/alerts", f"silences {base}/#/silences"]
    return [
        f"no web UI in this build; alerts as JSON {base}/api/v2/alerts",
        f"or `amtool --alertmanager.url={base} alert query`",
    ]
