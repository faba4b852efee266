"""The few Prometheus HTTP API calls a snapshot makes, each bounded in time.

Panel queries that Prometheus rejects (a bad expression) come back as a
:class:`QueryFailed` for that panel; a Prometheus that cannot be reached at
all is a :class:`PrometheusUnreachable`, which ends the snapshot.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

TIMEOUT_SECONDS = 10.0


class PrometheusUnreachable(Exception):
    """No answer from the Prometheus HTTP API at the given URL."""


class QueryFailed(Exception):
    """Prometheus answered, but refused or failed this query."""


@dataclass(frozen=True)
class Series:
    """One series of a query result: its labels and its (unix time, value) samples."""

    labels: dict[str, str]
    samples: tuple[tuple[float, float], ...]

    def last(self) -> float | None:
        """The last sample that is a number (Grafana's ``lastNotNull``)."""
        for _, value in reversed(self.samples):
            if not math.isnan(value):
                return value
        return None


def check_url(url: str) -> str:
    """``url`` without a trailing slash; ``ValueError`` unless it is an http(s) URL with a host."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{url!r} is not an http:// or https:// URL")
    return url.rstrip("/")


class PrometheusClient:
    """Instant and range queries against one Prometheus."""

    def __init__(self, base_url: str, timeout: float = TIMEOUT_SECONDS) -> None:
        self.base_url = check_url(base_url)
        self.timeout = timeout

    def _get(self, path: str, params: dict[str, str]) -> Any:
        url = f"{self.base_url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as response:
                body = json.load(response)
        except urllib.error.HTTPError as err:
            try:
                body = json.load(err)
            except ValueError:
                raise QueryFailed(f"HTTP {err.code} from {path}") from None
            finally:
                err.close()
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = getattr(err, "reason", err)
            raise PrometheusUnreachable(f"no Prometheus API at {self.base_url}: {reason}") from None
        if not isinstance(body, dict) or "status" not in body:
            raise PrometheusUnreachable(f"{self.base_url} does not answer like Prometheus")
        if body["status"] != "success":
            raise QueryFailed(str(body.get("error", "query failed")))
        return body["data"]

    def build_info(self) -> dict[str, str]:
        """Prometheus' version info: the cheap call that proves the API answers."""
        data = self._get("/api/v1/status/buildinfo", {})
        return {str(k): str(v) for k, v in data.items()}

    def query(self, expr: str, at: float) -> list[Series]:
        data = self._get("/api/v1/query", {"query": expr, "time": f"{at:.3f}"})
        return _series(data)

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[Series]:
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        return _series(self._get("/api/v1/query_range", params))


def _series(data: dict[str, Any]) -> list[Series]:
    kind, result = data["resultType"], data["result"]
    if kind == "scalar":
        return [Series({}, ((float(result[0]), float(result[1])),))]
    if kind == "vector":
        return [
            Series(dict(r["metric"]), ((float(r["value"][0]), float(r["value"][1])),))
            for r in result
        ]
    if kind == "matrix":
        return [
            Series(dict(r["metric"]), tuple((float(t), float(v)) for t, v in r["values"]))
            for r in result
        ]
    raise QueryFailed(f"unexpected result type {kind!r}")
