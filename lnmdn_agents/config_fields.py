"""Typed dataclass configs: field type checks, typed parsing of ``FIELD=VALUE`` text, field tables.

Every config (policy configs, ``TrainConfig``, ``BenchPreset``) calls :func:`check_field_types`
first in its ``__post_init__``, so a wrong type fails at once with the field named::

    make_policy("gru_mdn", dropout="x")
    # ConfigTypeError: GRUMDNConfig.dropout must be a number (float), got 'x' (str)

then checks its values with :func:`check_ints` and :func:`check_range`, the one wording of a
bad value::

    make_policy("gru_mdn", dropout=1.5)
    # ValueError: GRUMDNConfig.dropout must be in [0, 1), got dropout=1.5

:func:`parse_field_value` turns command-line text into a value of a field's type (``--set
down_dims=24,48,48``, ``--set clip_sample=false``), :func:`read_config_file` reads the fields a
JSON file sets (``--config FILE``), and :func:`field_rows` lists a config's fields with their
types, defaults and help (``lnmdn policies NAME``).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import numbers
import re
import types
import typing
from pathlib import Path
from typing import Any, Union

from lnmdn_envs.suggest import did_you_mean

__all__ = [
    "ConfigTypeError",
    "attribute_docs",
    "check_field_types",
    "check_ints",
    "check_range",
    "field_rows",
    "parse_field_value",
    "plain_help",
    "read_config_file",
    "type_name",
]

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


class ConfigTypeError(TypeError, ValueError):
    """A config field has a value of the wrong type (a ``TypeError`` and a ``ValueError``)."""


def _optional_inner(tp: Any) -> tuple[Any, bool]:
    """``X | None`` -> ``(X, True)``; any other type -> ``(tp, False)``."""
    origin = typing.get_origin(tp)
    if origin is Union or origin is types.UnionType:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


def type_name(tp: Any) -> str:
    """A short readable name of a field type: ``int``, ``tuple[int, ...]``, ``str | None``."""
    inner, optional = _optional_inner(tp)
    if optional:
        return f"{type_name(inner)} | None"
    origin = typing.get_origin(inner)
    if origin is None:
        return getattr(inner, "__name__", str(inner))
    args = typing.get_args(inner)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return f"tuple[{type_name(args[0])}, ...]"
    return f"{origin.__name__}[{', '.join(type_name(a) for a in args)}]"


def _describe(tp: Any) -> str:
    """What a value of ``tp`` is, in words, for error messages."""
    inner, optional = _optional_inner(tp)
    base = {
        bool: "true or false (bool)",
        int: "an integer (int)",
        float: "a number (float)",
        str: "a string (str)",
    }.get(inner, type_name(inner))
    origin = typing.get_origin(inner)
    if origin is tuple or origin is list:
        args = typing.get_args(inner)
        elem = type_name(args[0]) if args else "value"
        base = f"a list of {elem} values ({type_name(inner)})"
    elif origin is dict:
        base = f"a mapping ({type_name(inner)})"
    return f"{base} or None" if optional else base


def _coerce(value: Any, tp: Any) -> tuple[bool, Any]:
    """``(ok, value)``: ``value`` as ``tp`` (ints for floats, lists for tuples), or not ok."""
    inner, optional = _optional_inner(tp)
    if value is None:
        return optional, None
    if inner is Any:
        return True, value
    if inner is bool:
        return isinstance(value, (bool, _np_bool())), bool(value) if _is_bool(value) else value
    if inner is int:
        ok = isinstance(value, numbers.Integral) and not _is_bool(value)
        return ok, int(value) if ok else value
    if inner is float:
        ok = isinstance(value, numbers.Real) and not _is_bool(value)
        if not ok:
            return False, value
        return True, value if type(value) in (int, float) else float(value)
    if inner is str:
        return isinstance(value, str), value
    origin = typing.get_origin(inner)
    args = typing.get_args(inner)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            return False, value
        elem = args[0] if args else Any
        out = []
        for v in value:
            ok, v = _coerce(v, elem)
            if not ok:
                return False, value
            out.append(v)
        return True, tuple(out) if origin is tuple else out
    if origin is dict:
        if not isinstance(value, dict):
            return False, value
        key_tp, val_tp = args if args else (Any, Any)
        for k, v in value.items():
            if not _coerce(k, key_tp)[0] or not _coerce(v, val_tp)[0]:
                return False, value
        return True, value
    return True, value  # an annotation this checker does not know: accept


def _np_bool() -> type:
    try:
        import numpy as np

        return np.bool_
    except ImportError:  # pragma: no cover - numpy is a dependency
        return bool


def _is_bool(value: Any) -> bool:
    return isinstance(value, (bool, _np_bool()))


def check_field_types(obj: Any) -> None:
    """Check (and normalise) every field of the dataclass instance ``obj`` against its annotation.

    Integers are accepted for float fields, lists for tuple fields (stored as tuples), numpy
    scalars for int/float fields (stored as Python numbers); ``bool`` is never an int.

    Raises:
        ConfigTypeError: a field's value has the wrong type; the message names the class, the
            field, the value and the expected type.
    """
    cls = type(obj)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        normalised = _checked(cls, f.name, hints.get(f.name, Any), value)
        if normalised is not value:
            object.__setattr__(obj, f.name, normalised)


def _checked(cls: type, name: str, tp: Any, value: Any, where: str = "") -> Any:
    """``value`` normalised as a value of field ``name`` (type ``tp``) of ``cls``, or raise."""
    ok, normalised = _coerce(value, tp)
    if not ok:
        raise ConfigTypeError(
            f"{where}{cls.__name__}.{name} must be {_describe(tp)}, got {value!r} "
            f"({type(value).__name__})"
        )
    return normalised


def read_config_file(cls: type, path: str | Path) -> dict[str, Any]:
    """The fields of dataclass ``cls`` that a JSON file sets (``--config FILE``), checked.

    The file is one JSON object whose keys are fields of ``cls`` (e.g. a run's own
    ``train_config.json`` for ``TrainConfig``); values are checked and normalised as
    :func:`check_field_types` does.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a JSON object, or a key that is no field of ``cls`` (the message names the
            key, the file and the fields); a ConfigTypeError names a field of the wrong type.
    """
    path = Path(path)
    if not path.is_file():
        problem = "is not a file" if path.exists() else "does not exist"
        raise FileNotFoundError(f"config file {path} {problem} (--config takes a JSON file)")
    what = f'a JSON object of {cls.__name__} fields, e.g. {{"epochs": 10}}'
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"config file {path} is not valid JSON ({err}); write {what}") from None
    if not isinstance(data, dict):
        raise ValueError(f"config file {path} holds a {type(data).__name__}; write {what}")
    hints = typing.get_type_hints(cls)
    fields = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in fields:
            raise ValueError(
                f"config file {path}: {key!r} is not a {cls.__name__} field."
                f"{did_you_mean(key, fields)} Fields: {sorted(fields)}"
            )
    where = f"config file {path}: "
    return {k: _checked(cls, k, hints.get(k, Any), v, where) for k, v in data.items()}


def check_ints(obj: Any, *names: str, minimum: int = 1, none_ok: bool = False) -> None:
    """Check that each field ``names`` of ``obj`` is an integer ``>= minimum`` (``bool`` is not).

    Args:
        obj: a config instance (any object with these attributes).
        *names: the fields to check.
        minimum: the smallest value allowed.
        none_ok: ``None`` is allowed too (an optional field).

    Raises:
        ValueError: names the class, the field, the value and what it must be, e.g.
            ``TrainConfig.epochs must be an integer >= 1, got epochs=0``.
    """
    for name in names:
        value = getattr(obj, name)
        if none_ok and value is None:
            continue
        if not isinstance(value, int) or _is_bool(value) or value < minimum:
            allowed = f"an integer >= {minimum}" + (" or None" if none_ok else "")
            raise ValueError(f"{type(obj).__name__}.{name} must be {allowed}, got {name}={value!r}")


def check_range(
    obj: Any,
    name: str,
    *,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
) -> None:
    """Check that the number field ``name`` of ``obj`` is finite and within the given bounds.

    ``gt``/``ge`` bound it from below (exclusive/inclusive), ``lt``/``le`` from above; give at
    most one of each pair. The message writes the bounds as an interval, ``(0, 1]``, or as one
    comparison, ``> 0``.

    Raises:
        ValueError: names the class, the field, the value and the allowed range, e.g.
            ``TrainConfig.fraction must be in (0, 1], got fraction=0.0``.
    """
    if (gt is not None and ge is not None) or (lt is not None and le is not None):
        raise TypeError(f"check_range({name!r}): give at most one of gt/ge and one of lt/le")
    value = getattr(obj, name)
    low = gt if gt is not None else ge
    high = lt if lt is not None else le
    ok = isinstance(value, numbers.Real) and not _is_bool(value) and math.isfinite(value)
    if ok:
        ok = (gt is None or value > gt) and (ge is None or value >= ge)
        ok = ok and (lt is None or value < lt) and (le is None or value <= le)
    if ok:
        return
    if low is not None and high is not None:
        allowed = (
            f"in {'(' if gt is not None else '['}{low}, {high}{')' if lt is not None else ']'}"
        )
    elif low is not None:
        allowed = f"{'>' if gt is not None else '>='} {low}"
    else:
        allowed = f"{'<' if lt is not None else '<='} {high}"
    finite = "" if not isinstance(value, float) or math.isfinite(value) else " and finite"
    raise ValueError(f"{type(obj).__name__}.{name} must be {allowed}{finite}, got {name}={value!r}")


def parse_field_value(cls: type, name: str, raw: str) -> Any:
    """Parse command-line text ``raw`` into a value for field ``name`` of dataclass ``cls``.

    Accepted forms: ints and floats as usual; bools as ``true/false/1/0/yes/no/on/off``;
    lists and tuples as ``24,48,48``, ``[24,48,48]`` or ``(24, 48, 48)``; ``none``/``null`` for
    optional fields; strings as written (or JSON-quoted). Any field also takes JSON.

    Raises:
        KeyError: ``cls`` has no field ``name`` (the message lists the fields).
        ConfigTypeError: ``raw`` is not a value of the field's type.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if name not in fields:
        hint = did_you_mean(name, fields)
        raise KeyError(f"{cls.__name__} has no field {name!r}.{hint} Fields: {sorted(fields)}")
    tp = typing.get_type_hints(cls).get(name, Any)
    inner, optional = _optional_inner(tp)
    text = raw.strip()
    if optional and text.lower() in ("none", "null", ""):
        return None
    try:
        value = _parse_text(text, inner)
    except ValueError:
        value = _NOT_PARSED
    ok, value = (False, raw) if value is _NOT_PARSED else _coerce(value, inner)
    if not ok:
        raise ConfigTypeError(
            f"{name}={raw!r}: {cls.__name__}.{name} must be {_describe(tp)}" + _example(name, inner)
        )
    return value


_NOT_PARSED = object()


def _example(name: str, tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (tuple, list):
        return f", e.g. --set {name}=24,48,48 or --set '{name}=[24, 48, 48]'"
    if tp is bool:
        return ", e.g. true or false"
    return ""


def _parse_text(text: str, tp: Any) -> Any:
    """Text -> a Python value for ``tp`` (before the type check); ValueError if unparsable."""
    if tp is str:
        if len(text) >= 2 and text[0] == text[-1] == '"':
            return json.loads(text)
        return text
    if tp is bool:
        low = text.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError(text)
    if tp is int:
        return int(text)
    if tp is float:
        return float(text)
    origin = typing.get_origin(tp)
    if origin in (tuple, list):
        body = text
        if body[:1] in "[(" and body[-1:] in "])":
            body = body[1:-1]
        args = typing.get_args(tp)
        elem = args[0] if args else str
        parts = [p.strip() for p in body.split(",") if p.strip()]
        return [_parse_text(p, elem) for p in parts]
    return json.loads(text)


# -- help text ----------------------------------------------------------------------------------
def plain_help(text: str) -> str:
    """Docstring text for a terminal: reST literals (````x````) and roles (``:class:`x```) as x."""
    text = re.sub(r":\w+:`~?([^`]+)`", r"\1", text)
    return text.replace("``", "").replace("`", "")


def attribute_docs(cls: type) -> dict[str, str]:
    """``{field: help}`` from the Google-style ``Attributes:`` sections of ``cls`` and its bases.

    A subclass's description of a field wins over its base class's.
    """
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        doc = inspect.cleandoc(klass.__dict__.get("__doc__") or "")
        current = None
        in_section = False
        for line in doc.splitlines():
            if line.strip() == "Attributes:":
                in_section = True
                continue
            if not in_section:
                continue
            match = re.match(r"^    (\w+): (.*)$", line)
            if match:
                current = match.group(1)
                out[current] = match.group(2).strip()
            elif line.startswith("        ") and current:
                out[current] += " " + line.strip()
            elif line.strip():
                in_section = False
    return out


def field_rows(cls: type) -> list[tuple[str, str, Any, str]]:
    """``(name, type, default, help)`` for each field of dataclass ``cls``, in order."""
    hints = typing.get_type_hints(cls)
    docs = attribute_docs(cls)
    rows = []
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default: Any = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        rows.append((f.name, type_name(hints.get(f.name, Any)), default, docs.get(f.name, "")))
    return rows
