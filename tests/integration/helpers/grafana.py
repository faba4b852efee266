"""A small client of Grafana's and Tempo's HTTP APIs for the container tier."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


class HTTPJSON:
    """GET/POST JSON with optional basic auth; returns (status, decoded body or text)."""

    def __init__(
        self, base_url: str, *, auth: tuple[str, str] | None = None, timeout: float = 10.0
    ):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._headers = {"Accept": "application/json"}
        if auth is not None:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        headers = dict(self._headers)
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(
            self.base_url + path, data=data, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status, raw = int(response.status), response.read()
        except urllib.error.HTTPError as exc:
            status, raw = int(exc.code), exc.read()
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def get(self, path: str, **params: Any) -> tuple[int, Any]:
        query = urllib.parse.urlencode(params)
        return self.request("GET", path + (f"?{query}" if query else ""))

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        return self.request("POST", path, body)


# What Grafana's "Save & test" button requests, through the datasource proxy, for a
# datasource whose plugin has no backend health check (Alertmanager's is frontend-only).
PROXY_PROBES = {"alertmanager": "api/v2/status", "tempo": "api/echo"}


class GrafanaAPI(HTTPJSON):
    """Grafana's HTTP API: health, datasources, dashboards and the query endpoint."""

    def healthy(self) -> bool:
        status, body = self.get("/api/health")
        return status == 200 and isinstance(body, dict) and body.get("database") == "ok"

    def datasources(self) -> list[dict[str, Any]]:
        status, body = self.get("/api/datasources")
        if status != 200:
            raise AssertionError(f"GET /api/datasources: HTTP {status}: {body}")
        return list(body)

    def datasource_health(self, uid: str) -> tuple[int, Any]:
        return self.get(f"/api/datasources/uid/{urllib.parse.quote(uid)}/health")

    def datasource_healthy(self, datasource: dict[str, Any]) -> tuple[bool, str]:
        """Whether ``datasource`` passes the check Grafana's own "Save & test" runs, and why.

        A backend plugin's health check must say OK. Only where Grafana answers
        404 (the plugin implements no backend check) does the proxy probe the
        UI would use stand in; a failing check is never overridden.
        """
        uid, kind = datasource["uid"], datasource["type"]
        status, body = self.datasource_health(uid)
        if status == 200 and str((body or {}).get("status", "")).upper() == "OK":
            return True, "backend health check OK"
        probe = PROXY_PROBES.get(kind)
        if status != 404 or probe is None:
            return False, f"health check: HTTP {status}: {body}"
        proxied, answer = self.get(f"/api/datasources/proxy/uid/{urllib.parse.quote(uid)}/{probe}")
        return proxied == 200, f"proxy {probe}: HTTP {proxied}: {str(answer)[:200]}"

    def dashboard(self, uid: str) -> tuple[int, Any]:
        return self.get(f"/api/dashboards/uid/{urllib.parse.quote(uid)}")

    def prometheus_query(self, datasource_uid: str, expr: str) -> list[float]:
        """Values of an instant PromQL query run through Grafana's /api/ds/query."""
        status, body = self.post(
            "/api/ds/query",
            {
                "from": "now-5m",
                "to": "now",
                "queries": [
                    {
                        "refId": "A",
                        "datasource": {"type": "prometheus", "uid": datasource_uid},
                        "expr": expr,
                        "instant": True,
                        "range": False,
                        "intervalMs": 15000,
                        "maxDataPoints": 100,
                    }
                ],
            },
        )
        if status != 200:
            raise AssertionError(f"/api/ds/query {expr!r}: HTTP {status}: {body}")
        result = body["results"]["A"]
        if result.get("error"):
            raise AssertionError(f"/api/ds/query {expr!r}: {result['error']}")
        values: list[float] = []
        for frame in result.get("frames", []):
            columns = frame.get("data", {}).get("values", [])
            if len(columns) >= 2:  # [timestamps, values]
                values.extend(float(v) for v in columns[1] if v is not None)
        return values
