"""The OTLP endpoint check, in the core: command lines validate ``--otlp-endpoint`` with it.

It lives apart from the OpenTelemetry adapter (``otel.py``, which uses it too)
so that a command line can check the flag without importing OpenTelemetry:
the stack builds the demo's argv from ``meshwatch.demo.command_line``, and
``import meshwatch.stack`` must stay light.
"""

from __future__ import annotations

from urllib.parse import urlsplit


def check_endpoint(endpoint: str) -> str:
    """``endpoint`` if it is an http(s) URL with a host (and a valid port); else ValueError."""
    try:
        parts = urlsplit(endpoint)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise ValueError(
            f"OTLP endpoint {endpoint!r} is not an http(s) URL such as http://127.0.0.1:4318"
        )
    return endpoint


__all__ = ["check_endpoint"]
