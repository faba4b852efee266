"""Container image references, and the version each one pins.

The stack generates a config that the pinned version accepts (Tempo 3 has no
``ingester`` or ``compactor`` block and rejects unknown keys; Prometheus 3
changed scrape and name-validation defaults), so the version is read from the
image's tag rather than assumed. A reference is
``[registry/]name:tag[@sha256:digest]``; the digest, when given, makes the pin
immutable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class ImageRef:
    """One parsed image reference: ``name``, ``tag`` and the optional ``digest``."""

    name: str
    tag: str
    digest: str | None

    @classmethod
    def parse(cls, image: str) -> ImageRef:
        """Split ``image``; ValueError (the message says why) unless it is pinned to a tag."""
        reference, _, digest = image.partition("@")
        if digest and not _DIGEST_RE.match(digest):
            raise ValueError(f"the digest of {image!r} must be sha256: and 64 hex digits")
        name, sep, tag = reference.rpartition(":")
        if not sep or not name or "/" in tag or tag in ("", "latest"):
            raise ValueError(f"must be pinned to a version tag, got {image!r}")
        return cls(name, tag, digest or None)

    @property
    def version(self) -> tuple[int, int, int] | None:
        """``(major, minor, patch)`` from a tag such as ``v3.14.0`` or ``3.0.3``; None otherwise."""
        match = _VERSION_RE.match(self.tag)
        if match is None:
            return None
        major, minor, patch = match.groups()
        return int(major), int(minor), int(patch or 0)
