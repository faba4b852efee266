"""Build frozen settings dataclasses from plain YAML data, with errors that say where.

Each settings section is a frozen dataclass whose field types say what is
allowed. :func:`build` walks the type hints, so a section declares its schema
once, as Python types, and gets validation for free:

* ``int``, ``float``, ``str``, ``bool`` (a bool is never accepted as a number);
* :class:`Duration` (a Prometheus duration string such as ``5m`` or ``1h30m``);
* ``Literal[...]`` (one of the listed strings);
* ``X | None``, ``tuple[X, ...]``, ``dict[str, X]`` and nested settings dataclasses.

A field's YAML key is its name, or ``metadata={"key": "for"}`` when the name
is a Python keyword. Range checks live in each section's ``__post_init__`` and
raise ``ValueError``; the loader turns every problem into a
:class:`SettingsError` naming the file and the dotted key.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

T = TypeVar("T")

_DURATION_RE = re.compile(r"^(?:\d+y)?(?:\d+w)?(?:\d+d)?(?:\d+h)?(?:\d+m)?(?:\d+s)?(?:\d+ms)?$")
_UNIT_SECONDS = {
    "y": 365 * 86400,
    "w": 7 * 86400,
    "d": 86400,
    "h": 3600,
    "m": 60,
    "s": 1,
    "ms": 0.001,
}


class SettingsError(ValueError):
    """A settings value is wrong; the message names the file and the key."""

    def __init__(self, key: str, message: str, source: str | None = None) -> None:
        self.key = key
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{key}: {message}")


class Duration(str):
    """A Prometheus duration (``30s``, ``5m``, ``1h30m``), kept as written."""

    __slots__ = ()

    def __new__(cls, value: str) -> Duration:
        if not isinstance(value, str) or not value or not _DURATION_RE.match(value):
            raise ValueError(f"{value!r} is not a Prometheus duration such as 30s, 5m or 1h30m")
        return super().__new__(cls, value)

    @property
    def seconds(self) -> float:
        """The duration in seconds."""
        return sum(
            int(n) * _UNIT_SECONDS[u] for n, u in re.findall(r"(\d+)(ms|[ywdhms])", str(self))
        )


def yaml_key(f: dataclasses.Field[Any]) -> str:
    """The YAML key of a settings field."""
    key: str = f.metadata.get("key", f.name)
    return key


def build(cls: type[T], data: object, *, path: str = "", source: str | None = None) -> T:
    """Validate ``data`` (a mapping from YAML) against dataclass ``cls`` and build it."""
    return _build_dataclass(cls, data, path, source)


def _build_dataclass(
    cls: type[T], data: object, path: str, source: str | None, base: T | None = None
) -> T:
    """Build ``cls`` from ``data``; keys absent from ``data`` keep ``base``'s values.

    Starting from the field's default instance is what lets a user override one
    key of a nested section (``alerts.ring_breach_rate.threshold``) and keep the
    defaults of its siblings.
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise SettingsError(path or "<top>", f"expected a mapping, got {_kind(data)}", source)
    hints = get_type_hints(cls)
    fields = {yaml_key(f): f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(str(k) for k in data if k not in fields)
    if unknown:
        where = _join(path, unknown[0])
        known = ", ".join(sorted(fields))
        raise SettingsError(where, f"unknown key (known keys here: {known})", source)
    kwargs: dict[str, Any] = {}
    for key, f in fields.items():
        if key not in data:
            continue
        tp, sub_path = hints[f.name], _join(path, key)
        nested_base = _default_of(f) if dataclasses.is_dataclass(tp) else None
        if nested_base is not None:
            kwargs[f.name] = _build_dataclass(tp, data[key], sub_path, source, nested_base)
        else:
            kwargs[f.name] = _convert(tp, data[key], sub_path, source)
    try:
        if base is not None:
            return dataclasses.replace(base, **kwargs)  # type: ignore[type-var]
        return cls(**kwargs)
    except SettingsError:
        raise
    except (TypeError, ValueError) as exc:
        key, message = _split_field_error(exc)
        raise SettingsError(
            _join(path, key) if key else (path or "<top>"), message, source
        ) from None


def _convert(tp: Any, value: object, path: str, source: str | None) -> Any:
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        non_none = [o for o in options if o is not type(None)]
        errors = []
        for option in non_none:
            try:
                return _convert(option, value, path, source)
            except SettingsError as exc:
                errors.append(exc)
        raise errors[0]
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            choices = ", ".join(repr(a) for a in allowed)
            raise SettingsError(path, f"must be one of {choices}, got {value!r}", source)
        return value
    if origin is tuple:
        item_type = get_args(tp)[0]
        if not isinstance(value, list | tuple):
            raise SettingsError(path, f"expected a list, got {_kind(value)}", source)
        return tuple(_convert(item_type, v, f"{path}[{i}]", source) for i, v in enumerate(value))
    if origin is dict:
        key_type, item_type = get_args(tp)
        if not isinstance(value, Mapping):
            raise SettingsError(path, f"expected a mapping, got {_kind(value)}", source)
        return {
            _convert(key_type, k, path, source): _convert(item_type, v, _join(path, str(k)), source)
            for k, v in value.items()
        }
    if dataclasses.is_dataclass(tp):
        return _build_dataclass(tp, value, path, source)  # type: ignore[arg-type]
    if tp is Duration:
        try:
            return Duration(value)  # type: ignore[arg-type]
        except ValueError as exc:
            raise SettingsError(path, str(exc), source) from None
    if tp is bool:
        if not isinstance(value, bool):
            raise SettingsError(path, f"expected true or false, got {value!r}", source)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SettingsError(path, f"expected a whole number, got {value!r}", source)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SettingsError(path, f"expected a number, got {value!r}", source)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise SettingsError(path, f"expected a string, got {value!r}", source)
        return value
    raise TypeError(f"settings field {path} has an unsupported type {tp!r}")


def _default_of(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def check(condition: bool, key: str, message: str) -> None:
    """Raise a field error from a section's ``__post_init__``: ``check(x > 0, "threshold", ...)``."""
    if not condition:
        raise ValueError(f"{key}: {message}")


def _split_field_error(exc: Exception) -> tuple[str, str]:
    text = str(exc)
    head, sep, tail = text.partition(": ")
    if sep and re.fullmatch(r"[A-Za-z_][\w.\[\]]*", head):
        return head, tail
    return "", text


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind(value: object) -> str:
    return "nothing" if value is None else f"{type(value).__name__} {value!r}"


def load_yaml_mapping(path: Path) -> Mapping[str, Any]:
    """Read a YAML file that must hold a mapping (or be empty)."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError("<file>", f"cannot read: {exc.strerror}", str(path)) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SettingsError("<file>", f"not valid YAML: {exc}", str(path)) from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise SettingsError("<top>", f"expected a mapping, got {_kind(data)}", str(path))
    return data
