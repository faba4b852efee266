"""``str()`` that cannot raise: label values, span attributes and log fields from agent data.

The instrumentation turns whatever an agent hands it into text, and must
never raise into the agent's code path, not even for an object whose
``__str__`` raises: such a value becomes ``<unprintable TypeName>``.
"""

from __future__ import annotations


def safe_str(value: object) -> str:
    """``str(value)``, or ``<unprintable TypeName>`` when its ``__str__`` raises."""
    if type(value) is str:
        return value
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


__all__ = ["safe_str"]
