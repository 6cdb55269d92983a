"""Shared helpers for the frozen-dataclass configuration system.

Every ``*Config`` in the package is a frozen dataclass with a ``validate()`` method that
raises :class:`ConfigError` naming the offending field. Validation runs on the host,
before anything is traced or compiled, so bad input never costs a compile.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any


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
