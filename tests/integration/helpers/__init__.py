"""Test-side servers and clients the integration tests drive the real components with.

Each helper is a real network peer bound to 127.0.0.1 on a free port: the
webhook receiver Alertmanager delivers to, the OTLP/HTTP receiver the demo
exports spans to, and a small client of Prometheus' and Alertmanager's HTTP
APIs with :func:`~tests.integration.helpers.poll.wait_until` for polling.
"""
