"""``--set FIELD=VALUE`` parsing shared by the benchmark scripts."""

from __future__ import annotations

import ast
from typing import Callable, NoReturn


def parse_overrides(items, error: Callable[[str], NoReturn]) -> dict:
    """``["a.b=3", "c=x"]`` -> ``{"a.b": 3, "c": "x"}``.

    Values are Python literals where they parse as one, else strings. A malformed item calls
    ``error`` with a one-line message (e.g. ``argparse.ArgumentParser.error``, exit 2).
    """
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            error(f"--set {item!r}: expected FIELD=VALUE")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out
