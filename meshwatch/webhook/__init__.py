"""What every Alertmanager webhook endpoint of meshwatch shares, standard library only.

Two endpoints take Alertmanager's webhook: the stack's alert sink
(``meshwatch.stack.alert_sink``, which records notifications) and the
remediation receiver (``meshwatch.remediation.server``, which acts on them).
Neither may import the other, so what they share lives here, below both:

* ``server.py``: :class:`~meshwatch.webhook.server.WebhookServer` (the
  listening socket, its serving thread, a stop that lets requests in flight
  finish) and :class:`~meshwatch.webhook.server.WebhookHandler` (JSON answers,
  and a request body that is bounded in size and in time);
* ``payload.py``: the notification's envelope (JSON, version 4, status,
  alerts) and its label and annotation maps, checked strictly, with a
  :class:`~meshwatch.webhook.payload.PayloadError` that names the first problem.

It imports nothing of meshwatch, so the alert sink still runs wherever
meshwatch is installed.
"""
