"""Small clients of the Prometheus and Alertmanager HTTP APIs, for asserting on live servers.

Only the standard library is used, so a failing assertion can never be blamed
on an HTTP client library. Every call has a short timeout; tests combine these
calls with :func:`tests.integration.helpers.poll.wait_until`.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from tests.integration.helpers.poll import WaitTimeout, wait_until

__all__ = ["APIError", "AlertmanagerAPI", "PrometheusAPI", "WaitTimeout", "http_get", "wait_until"]


class APIError(RuntimeError):
    """The server answered, but with an error (the message carries its explanation)."""


def http_get(url: str, *, timeout: float = 5.0) -> tuple[int, bytes]:
    """Status and body of a GET; HTTP errors are returned, connection errors raised."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def _get_json(url: str, timeout: float) -> Any:
    status, body = http_get(url, timeout=timeout)
    try:
        data = json.loads(body)
    except ValueError:
        raise APIError(f"GET {url}: HTTP {status}, not JSON: {body[:200]!r}") from None
    if status != 200:
        raise APIError(f"GET {url}: HTTP {status}: {data}")
    return data


class PrometheusAPI:
    """The parts of Prometheus' HTTP API (``/api/v1``) the integration tests use."""

    def __init__(self, base_url: str, *, timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"PrometheusAPI({self.base_url!r})"

    def ready(self) -> bool:
        """True when /-/ready answers 200 (TSDB loaded, WAL replayed)."""
        try:
            return http_get(f"{self.base_url}/-/ready", timeout=self.timeout)[0] == 200
        except OSError:
            return False

    def _api(self, path: str, **params: Any) -> Any:
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        url = f"{self.base_url}/api/v1/{path}" + (f"?{query}" if query else "")
        data = _get_json(url, self.timeout)
        if data.get("status") != "success":
            raise APIError(f"{path} {params}: {data.get('errorType')}: {data.get('error')}")
        return data["data"]

    def query(self, expr: str, *, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query's result list (vector results; a scalar becomes one item)."""
        data = self._api("query", query=expr, time=at)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def query_range(
        self, expr: str, *, start: float, end: float, step: float
    ) -> list[dict[str, Any]]:
        """A range query's matrix: one item per series, each with ``values`` [(t, "v"), ...]."""
        return list(self._api("query_range", query=expr, start=start, end=end, step=step)["result"])

    def value(self, expr: str, *, at: float | None = None) -> float | None:
        """The value of a query that returns exactly one sample, or None when it returns none."""
        result = self.query(expr, at=at)
        if not result:
            return None
        if len(result) > 1:
            raise APIError(f"{expr!r} returned {len(result)} series, expected one")
        return float(result[0]["value"][1])

    def exemplars(self, expr: str, *, start: float, end: float) -> list[dict[str, Any]]:
        """Exemplars of the series ``expr`` selects: each ``labels``, ``value``, ``timestamp``."""
        series = self._api("query_exemplars", query=expr, start=start, end=end)
        return [exemplar for item in series for exemplar in item["exemplars"]]

    def targets(self) -> list[dict[str, Any]]:
        """Active scrape targets with their ``health``, ``labels`` and ``lastError``."""
        return list(self._api("targets", state="active")["activeTargets"])

    def rule_groups(self) -> list[dict[str, Any]]:
        """Loaded rule groups, each with its ``rules`` (alerting and recording)."""
        return list(self._api("rules")["groups"])

    def alerts(self) -> list[dict[str, Any]]:
        """Active alerts (pending and firing) with labels, annotations and ``state``."""
        return list(self._api("alerts")["alerts"])

    def firing(self, alertname: str, **labels: str) -> list[dict[str, Any]]:
        """Firing alerts named ``alertname`` whose labels include ``labels``."""
        return [
            a
            for a in self.alerts()
            if a["state"] == "firing"
            and a["labels"].get("alertname") == alertname
            and all(a["labels"].get(k) == v for k, v in labels.items())
        ]

    def metric_names(self) -> set[str]:
        """Every metric name Prometheus holds a series of."""
        return set(self._api("label/__name__/values"))

    def alertmanagers(self) -> list[dict[str, Any]]:
        """Alertmanagers Prometheus currently sends alerts to."""
        return list(self._api("alertmanagers")["activeAlertmanagers"])


class AlertmanagerAPI:
    """The parts of Alertmanager's v2 API the integration tests use."""

    def __init__(self, base_url: str, *, timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"AlertmanagerAPI({self.base_url!r})"

    def ready(self) -> bool:
        try:
            return http_get(f"{self.base_url}/-/ready", timeout=self.timeout)[0] == 200
        except OSError:
            return False

    def alerts(self, *, active: bool = True, inhibited: bool = True) -> list[dict[str, Any]]:
        """Alerts Alertmanager holds, each with ``labels`` and ``status.inhibitedBy``."""
        query = urllib.parse.urlencode(
            {"active": str(active).lower(), "inhibited": str(inhibited).lower()}
        )
        return list(_get_json(f"{self.base_url}/api/v2/alerts?{query}", self.timeout))

    def cluster(self) -> dict[str, Any]:
        """The gossip cluster as this Alertmanager sees it: ``status`` and ``peers``."""
        status = _get_json(f"{self.base_url}/api/v2/status", self.timeout)
        return dict(status["cluster"])
