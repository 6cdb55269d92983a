"""What every config section shares: ConfigError, the checks, field metadata, dict I/O.

The convention, for every ``*Config`` of the package: a frozen dataclass whose fields are
declared with :func:`option` (its meaning, the ``--help`` text, and whether it is a
static or a traced value); ``validate()`` raises :class:`ConfigError` naming the field
(the dotted path once nested) and returns ``self``; derived sizes are properties, never
stored. Validation runs on the host, before anything is traced or compiled, so bad input
never costs a compile.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from typing import Any

#: Metadata kinds. ``static``: fixes shapes or trace structure (sizes, counts, choices,
#: switches; also host-side settings), so a change recompiles. ``traced``: a scalar
#: hyperparameter that only enters arithmetic, so a sweep (#15) can pass it as a traced
#: value and vary it without recompiling. Today every value is closed over by jit.
STATIC, TRACED = "static", "traced"


def option(default: Any = dataclasses.MISSING, *, help: str, traced: bool = False,
           default_factory: Any = dataclasses.MISSING):
    """A config field with its meaning (``help``, shown by ``active-rlhf train --help``)
    and its kind (``traced=True`` for a scalar hyperparameter, else static)."""
    return dataclasses.field(default=default, default_factory=default_factory,
                             metadata={"help": help, "kind": TRACED if traced else STATIC})


def field_help(f: dataclasses.Field) -> str:
    """A field's help text ('' when it has none)."""
    return f.metadata.get("help", "")


def _leaf_kinds(cls, prefix: str = ""):
    for f in dataclasses.fields(cls):
        sub = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(sub):
            yield from _leaf_kinds(type(sub), prefix + f.name + ".")
        else:
            yield prefix + f.name, f.metadata.get("kind")


def leaf_values(cfg) -> dict[str, Any]:
    """``{dotted leaf field: value}`` of a config instance (nested sections flattened)."""
    out = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            out.update({f"{f.name}.{k}": v for k, v in leaf_values(value).items()})
        else:
            out[f.name] = value
    return out


def apply_hyper(section, hyper: dict | None, prefix: str):
    """``section`` (a config dataclass) with its traced fields named ``prefix.*`` in
    ``hyper`` (a run's traced hyperparameters, ``{dotted field: value}``) replaced by those
    values, which may be tracers; ``section`` itself when ``hyper`` is None. Static
    fields in ``hyper`` (a choice's index, e.g. ``acquisition.method``) are left alone:
    the program reads those itself."""
    if hyper is None:
        return section
    traced = {f.name for f in dataclasses.fields(section) if f.metadata.get("kind") == TRACED}
    changes = {name.split(".", 1)[1]: value for name, value in hyper.items()
               if name.startswith(prefix + ".") and name.split(".", 1)[1] in traced}
    return dataclasses.replace(section, **changes)


def static_fields(cls) -> tuple[str, ...]:
    """Dotted names of the static leaf fields of a config class (nested sections too)."""
    return tuple(name for name, kind in _leaf_kinds(cls) if kind == STATIC)


def traced_fields(cls) -> tuple[str, ...]:
    """Dotted names of the traced scalar hyperparameters of a config class."""
    return tuple(name for name, kind in _leaf_kinds(cls) if kind == TRACED)


class ConfigError(ValueError):
    """A configuration value is invalid. ``field`` names it (dotted path when nested)."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")


def check_positive_int(field: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(field, f"must be a positive integer, got {value!r}")


def check_nonnegative_int(field: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(field, f"must be a non-negative integer, got {value!r}")


def check_finite(field: str, value: Any) -> None:
    try:
        ok = math.isfinite(float(value))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ConfigError(field, f"must be a finite number, got {value!r}")


def check_positive(field: str, value: Any) -> None:
    check_finite(field, value)
    if float(value) <= 0:
        raise ConfigError(field, f"must be > 0, got {value!r}")


def check_nonnegative(field: str, value: Any) -> None:
    check_finite(field, value)
    if float(value) < 0:
        raise ConfigError(field, f"must be >= 0, got {value!r}")


def check_in_range(field: str, value: Any, lo: float, hi: float) -> None:
    """lo <= value <= hi."""
    check_finite(field, value)
    if not lo <= float(value) <= hi:
        raise ConfigError(field, f"must be in [{lo}, {hi}], got {value!r}")


def check_choice(field: str, value: Any, choices) -> None:
    if value not in choices:
        raise ConfigError(field, f"must be one of {sorted(choices)}, got {value!r}")


def check_bool(field: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigError(field, f"must be a bool, got {value!r}")


def check_sizes(field: str, value: Any) -> None:
    """A non-empty tuple of positive ints (hidden-layer widths)."""
    if not isinstance(value, tuple) or not value:
        raise ConfigError(field, f"must be a non-empty tuple of ints, got {value!r}")
    for i, h in enumerate(value):
        check_positive_int(f"{field}[{i}]", h)


def check_range_pair(field: str, value: Any) -> None:
    """(lo, hi) with lo < hi."""
    if len(value) != 2 or not float(value[0]) < float(value[1]):
        raise ConfigError(field, f"must be (lo, hi) with lo < hi, got {value!r}")


def prefix_errors(prefix: str, validate) -> None:
    """Run ``validate()`` and re-raise its ConfigError with ``prefix.`` on the field."""
    try:
        validate()
    except ConfigError as e:
        raise ConfigError(f"{prefix}.{e.field}", str(e).split(": ", 1)[1]) from None


def to_dict(cfg) -> dict:
    """Nested dataclass -> plain JSON-able dict (tuples become lists)."""
    return dataclasses.asdict(cfg)


def from_dict(cls, data: dict):
    """Inverse of :func:`to_dict` for nested frozen dataclasses.

    Unknown keys raise ConfigError; lists become tuples where the default is a tuple.
    (A saved experiment config goes through ``config.load_config_dict``, which also
    reads the field names of earlier versions.)
    """
    kwargs = {}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in data.items():
        if key not in fields:
            raise ConfigError(key, f"unknown field for {cls.__name__}")
        f = fields[key]
        ftype = f.type if not isinstance(f.type, str) else None
        default = (
            f.default
            if f.default is not dataclasses.MISSING
            else (f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        )
        if dataclasses.is_dataclass(default) and isinstance(value, dict):
            value = from_dict(type(default), value)
        elif ftype is not None and dataclasses.is_dataclass(ftype) and isinstance(value, dict):
            value = from_dict(ftype, value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


def replace(cfg, **changes):
    """dataclasses.replace with dotted keys: replace(cfg, **{"ppo.learning_rate": 1e-4})."""
    nested: dict[str, dict] = {}
    flat = {}
    for key, value in changes.items():
        head, _, rest = key.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            flat[key] = value
    for head, sub in nested.items():
        if not hasattr(cfg, head):
            raise ConfigError(head, f"unknown config group for {type(cfg).__name__}")
        flat[head] = replace(getattr(cfg, head), **sub)
    names = {f.name for f in dataclasses.fields(cfg)}
    for key in flat:
        if key not in names:
            raise ConfigError(key, f"unknown field of {type(cfg).__name__}")
    return dataclasses.replace(cfg, **flat)


def parse_value(text: str, default, name: str):
    """``text`` (a command-line value) as the type of ``default``, the field's current value;
    one-line ConfigError naming ``name`` when it does not parse."""
    try:
        if isinstance(default, bool):
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if isinstance(default, int):
            return int(float(text)) if re.fullmatch(r"-?\d+(\.0*)?(e\d+)?", text) else int(text)
        if isinstance(default, float):
            return float(text)
        if isinstance(default, tuple):
            items = [t for t in text.replace("(", "").replace(")", "").split(",") if t.strip()]
            kind = type(default[0]) if default else float
            return tuple(kind(float(t)) if kind is int else kind(t.strip()) for t in items)
        if default is None:
            try:
                return json.loads(text)
            except json.JSONDecodeError:
                return text
        return text
    except (ValueError, TypeError):
        raise ConfigError(name, f"cannot parse {text!r} as {type(default).__name__}") from None
