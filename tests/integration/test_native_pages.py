"""The pages ``meshwatch up`` prints in native mode answer on the binaries native mode runs.

Debian's Prometheus 2.42 serves its alert and target pages under ``/classic/``
and has no ``/alerts``; Debian's Alertmanager has no web UI, so the API and
``amtool`` are what ``up`` points to. Whatever the installed build, every page
printed must answer.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess

import pytest

from meshwatch.stack.runner.web_ui import alertmanager_pages, prometheus_pages
from tests.integration.helpers.prom import http_get
from tests.integration.helpers.stack import LiveStack

pytestmark = pytest.mark.integration


def test_the_pages_native_mode_prints_answer_on_the_binaries_it_runs(
    live_stack: LiveStack, amtool: str
) -> None:
    prometheus = prometheus_pages(live_stack.native.url("prometheus"))
    assert set(prometheus) == {"graph", "alerts", "targets"}
    for name, url in prometheus.items():
        status, body = http_get(url)
        assert status == 200, (name, url)
        assert b"Prometheus" in body, (name, url)

    lines = alertmanager_pages(live_stack.native.url("alertmanager"))
    text = " ".join(lines)
    commands = re.findall(r"`(amtool [^`]+)`", text)
    pages = [
        url.rstrip("`;,") for url in re.findall(r"https?://[^\s`]+", re.sub(r"`[^`]*`", "", text))
    ]
    assert pages
    for page in pages:
        status, body = http_get(page)
        assert status == 200, page
        if "/api/" in page:  # Debian's build: no UI, so the API (JSON) is what is printed
            assert isinstance(json.loads(body), list), page
    for command in commands:
        argv = [amtool, *shlex.split(command)[1:]]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        assert result.returncode == 0, result.stderr
