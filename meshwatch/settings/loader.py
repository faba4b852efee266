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
import functools
import math
import re
import stat
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
        self.message = message
        where = f"{source}: " if source else ""
        what = f"{key}: " if key else ""
        super().__init__(_one_line(f"{where}{what}{message}"))

    def in_file(self, source: str) -> SettingsError:
        """The same error naming ``source`` (for checks that run after loading, cross-field)."""
        return SettingsError(self.key, self.message, source)


def _one_line(text: str) -> str:
    """``text`` with control characters (a newline in a YAML key) escaped: one printable line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


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
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise SettingsError(path, f"must be a finite number, got {value!r}", source)
        return number
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
    """Read a YAML file that must hold a mapping (or be empty); every failure is one line.

    The file must be a regular file of UTF-8 text; a mapping may not repeat a
    key (YAML says keys are unique, PyYAML would keep the last silently); and
    ``5e-2`` is the number it looks like (YAML 1.1 wants ``5.0e-2``). A syntax
    error names ``file:line:column``.
    """

    where = str(path)
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            raise SettingsError("", "not a regular file", where)
        with path.open("rb") as stream:
            raw = stream.read(_MAX_SETTINGS_BYTES + 1)
    except OSError as exc:
        raise SettingsError("", f"cannot read: {exc.strerror or exc}", where) from None
    if len(raw) > _MAX_SETTINGS_BYTES:
        raise SettingsError("", f"larger than {_MAX_SETTINGS_BYTES // 2**20} MiB", where)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SettingsError("", f"not UTF-8 text (at byte offset {exc.start})", where) from None
    data = parse_yaml(text, where)
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise SettingsError("<top>", f"expected a mapping, got {_kind(data)}", where)
    return data


_MAX_SETTINGS_BYTES = 4 * 2**20
# YAML 1.2's float forms PyYAML's 1.1 resolver misses: 5e-2, 1E3, +2e10 (no dot).
_EXPONENT_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")


def parse_yaml(text: str, where: str) -> object:
    """``text`` as YAML data with the settings loader's rules (see :func:`load_yaml_mapping`)."""
    import yaml

    try:
        return yaml.load(text, Loader=_settings_loader())
    except SettingsError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(str(exc.problem or exc.context or "invalid YAML").split())
        at = f"{where}:{mark.line + 1}:{mark.column + 1}" if mark else where
        raise SettingsError("", f"not valid YAML: {problem}", at) from None
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        raise SettingsError("", f"not valid YAML: {message}", where) from None


@functools.cache
def _settings_loader() -> type[Any]:
    import yaml

    class SettingsLoader(yaml.SafeLoader):
        """SafeLoader that rejects duplicate keys and reads ``5e-2`` as a float."""

        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            if isinstance(node, yaml.MappingNode):
                seen: dict[object, Any] = {}
                for key_node, _ in node.value:
                    if key_node.tag == "tag:yaml.org,2002:merge":
                        continue  # "<<: *defaults": keys given here may override merged ones
                    key = self.construct_object(key_node, deep=True)
                    try:
                        duplicate = key in seen
                    except TypeError:  # an unhashable key: SafeLoader reports it
                        break
                    if duplicate:
                        mark = key_node.start_mark
                        raise yaml.constructor.ConstructorError(
                            None,
                            None,
                            f"duplicate key {key!r} (first at line {seen[key].line + 1})",
                            mark,
                        )
                    seen[key] = key_node.start_mark
            return dict(super().construct_mapping(node, deep=deep))

    SettingsLoader.add_implicit_resolver(
        "tag:yaml.org,2002:float", _EXPONENT_FLOAT, list("-+0123456789")
    )
    return SettingsLoader
