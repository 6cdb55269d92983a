"""Strict JSON for every file and line the package writes: NaN and +-inf become ``null``.

Python's ``json`` writes bare ``NaN``/``Infinity`` tokens by default, which strict parsers
(``jq``, JavaScript, many dataframe readers) reject. Everything written through
:func:`dumps` is converted first and then encoded with ``allow_nan=False``, so a
non-finite value that slipped past the conversion raises instead of being written.
"""

from __future__ import annotations

import json
import math

import numpy as np


def clean(obj):
    """Copy of ``obj`` with non-finite floats as None, NumPy scalars/arrays as Python values."""
    if isinstance(obj, dict):
        return {k: clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return clean(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        return x if math.isfinite(x) else None
    return obj


def dumps(obj, **kwargs) -> str:
    """``json.dumps`` of :func:`clean` (obj) with ``allow_nan=False``."""
    return json.dumps(clean(obj), allow_nan=False, **kwargs)
