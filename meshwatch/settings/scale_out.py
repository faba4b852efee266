"""Scale-out settings: remote write to a long-term store, and the labels that say where data came from.

A team past one Prometheus keeps its metrics in Mimir, Thanos Receive or
Cortex through ``remote_write``, and tells its replicas apart by
``external_labels``. These sections are read by every target (compose,
native, Kubernetes), so one meshwatch.yaml describes the same store
everywhere.

Credentials are never written here: basic auth and bearer tokens name a file
holding the secret (absolute path), as the receivers do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from meshwatch.settings.loader import Duration, check

# The label-name grammar every Prometheus accepts (2.x has no UTF-8 names).
LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

# Headers Prometheus sets itself and refuses in ``remote_write.headers``
# (``reservedHeaders`` in config/config.go, the same list in v2.42 and v3.x),
# plus Authorization, which must come from ``bearer_token_file`` or basic auth.
RESERVED_HEADERS = frozenset(
    {
        "authorization",
        "host",
        "content-encoding",
        "content-length",
        "content-type",
        "user-agent",
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "www-authenticate",
        "accept-encoding",
        "x-prometheus-remote-write-version",
        "x-prometheus-remote-read-version",
        "x-amz-date",
        "x-amz-security-token",
        "x-amz-content-sha256",
    }
)
_HEADER_NAME_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def check_secret_path(key: str, path: str | None) -> None:
    """A secret file must be an absolute path: settings may be read from any directory."""
    if path is not None:
        check(
            path.startswith("/") and "\n" not in path,
            key,
            f"must be the absolute path of the file holding the secret, got {path!r}",
        )


def _is_label_name(name: str) -> bool:
    return bool(LABEL_NAME_RE.match(name)) and not name.startswith("__")


_LABEL_NAME_RULE = "letters, digits and '_', not starting with a digit or '__'"


@dataclass(frozen=True)
class RemoteWriteQueue:
    """Prometheus' ``queue_config`` for one remote write; unset keys keep Prometheus' defaults.

    Raise ``max_shards`` and ``capacity`` for a busy store, or lower them to
    protect a small one; ``max_backoff`` bounds how long a retry waits once
    the store comes back.
    """

    capacity: int | None = None
    min_shards: int | None = None
    max_shards: int | None = None
    max_samples_per_send: int | None = None
    batch_send_deadline: Duration | None = None
    min_backoff: Duration | None = None
    max_backoff: Duration | None = None

    def __post_init__(self) -> None:
        for name in ("capacity", "min_shards", "max_shards", "max_samples_per_send"):
            value = getattr(self, name)
            if value is not None:
                check(value >= 1, name, f"must be at least 1, got {value}")
        for name in ("batch_send_deadline", "min_backoff", "max_backoff"):
            value = getattr(self, name)
            if value is not None:
                check(value.seconds > 0, name, "must be positive")
        if self.min_shards is not None and self.max_shards is not None:
            check(self.min_shards <= self.max_shards, "min_shards", "must not exceed max_shards")
        if self.min_backoff is not None and self.max_backoff is not None:
            check(
                self.min_backoff.seconds <= self.max_backoff.seconds,
                "min_backoff",
                "must not exceed max_backoff",
            )

    def config(self) -> dict[str, object]:
        """The keys that are set, as Prometheus' ``queue_config`` spells them."""
        return {
            name: value if isinstance(value, int) else str(value)
            for name, value in vars(self).items()
            if value is not None
        }


@dataclass(frozen=True)
class RemoteWrite:
    """One remote-write destination (Mimir, Thanos Receive, Cortex, another Prometheus).

    ``url`` is the store's write endpoint (Mimir ``/api/v1/push``, Prometheus
    ``/api/v1/write``). Authenticate with ``username`` and ``password_file``
    (basic auth) or ``bearer_token_file``, never both. ``headers`` are sent
    with every request: ``X-Scope-OrgID`` names a Mimir or Cortex tenant.
    ``name`` tells the queues apart in Prometheus' own metrics
    (``prometheus_remote_storage_*{remote_name=...}``).
    """

    url: str = ""
    name: str | None = None
    username: str | None = None
    password_file: str | None = None
    bearer_token_file: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    remote_timeout: Duration | None = None
    send_exemplars: bool = True
    queue: RemoteWriteQueue = field(default_factory=RemoteWriteQueue)

    def __post_init__(self) -> None:
        check(bool(self.url), "url", "is required (the store's write endpoint)")
        check(
            self.url.startswith(("http://", "https://")) and "\n" not in self.url,
            "url",
            f"must be an http(s) URL, got {self.url!r}",
        )
        if self.name is not None:
            check(bool(re.match(r"^[A-Za-z0-9_.-]+$", self.name)), "name", "must be a short name")
        check(
            (self.username is None) == (self.password_file is None),
            "password_file" if self.username is not None else "username",
            "basic auth needs both username and password_file",
        )
        check(
            self.password_file is None or self.bearer_token_file is None,
            "bearer_token_file",
            "use basic auth or a bearer token, not both",
        )
        check_secret_path("password_file", self.password_file)
        check_secret_path("bearer_token_file", self.bearer_token_file)
        for header, value in self.headers.items():
            check(
                bool(_HEADER_NAME_RE.match(header)), "headers", f"{header!r} is not a header name"
            )
            check(
                header.lower() not in RESERVED_HEADERS,
                "headers",
                f"{header} is set by Prometheus itself "
                "(credentials go in password_file or bearer_token_file)",
            )
            check(
                "\n" not in value and "\r" not in value,
                "headers",
                f"the value of {header} must not contain line breaks",
            )
        if self.remote_timeout is not None:
            check(self.remote_timeout.seconds > 0, "remote_timeout", "must be positive")

    def secret_files(self) -> dict[str, str]:
        """The secret files this destination reads, by settings field name."""
        return {
            name: path
            for name in ("password_file", "bearer_token_file")
            if (path := getattr(self, name)) is not None
        }


def check_remote_writes(writes: tuple[RemoteWrite, ...]) -> None:
    """Names must be unique: Prometheus refuses two queues of one name."""
    seen: set[str] = set()
    for i, write in enumerate(writes):
        if write.name is not None:
            check(write.name not in seen, f"remote_write[{i}].name", "is used twice")
            seen.add(write.name)


def check_external_labels(labels: dict[str, str], replica_label: str, *, ha: bool) -> None:
    """Label names every Prometheus accepts, non-empty values, and, in HA, ``replica_label`` free."""
    check(
        _is_label_name(replica_label),
        "replica_label",
        f"must be a Prometheus label name ({_LABEL_NAME_RULE}), got {replica_label!r}",
    )
    for name, value in labels.items():
        check(
            _is_label_name(name),
            "external_labels",
            f"{name!r} is not a Prometheus label name ({_LABEL_NAME_RULE})",
        )
        check(bool(value), "external_labels", f"the value of {name} must not be empty")
        check(
            not ha or name != replica_label,
            "external_labels",
            f"{name} is the replica label, which meshwatch sets per Prometheus replica with "
            "ha: true (choose another replica_label to set it yourself)",
        )
