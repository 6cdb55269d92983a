"""Unified vs single-modality reward models on the toy problem of tests/test_reward_toy.py.

For each label count n the same keys fit three models: n preferences, n ratings, and the
unified model on n/2 + n/2 (the first halves of the single-modality data). Every key set
runs in one ``jit(vmap)`` call per fit. Reported per n: mean +- SE of the held-out Spearman
for each model, the issue's criterion ``unified - (best single - SE(best))`` (>= 0 passes),
and the paired difference ``unified - mean(pref, rating)`` +- its SE, which measures
whether joint training gains or loses against the average of the two modalities.

Usage::

    python -m benchmarks.reward_toy --keys 30 --key 1 --labels 24,40,60,100
    python -m benchmarks.reward_toy --set warmup_epochs=0      # the pre-warm-up trainer

``--key 0 --keys 10`` are the test's keys. ``--set FIELD=VALUE`` overrides a
``RewardModelConfig`` field (values parsed as Python literals). ``--json`` appends one
line per label count.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import numpy as np

from benchmarks._overrides import parse_overrides

# make_toy fixes these (the toy's network; the teacher's rating range is not a model field).
FIXED_FIELDS = ("hidden", "dropout")


def _check_overrides(overrides):
    """Exit with one line naming the field if an override is unknown, fixed or invalid."""
    import dataclasses

    from active_rlhf_jax.config import RewardModelConfig

    names = {f.name for f in dataclasses.fields(RewardModelConfig)}
    for name in overrides:
        if name not in names:
            raise SystemExit(f"--set {name}: not a RewardModelConfig field")
        if name in FIXED_FIELDS:
            raise SystemExit(f"--set {name}: fixed by the toy problem ({', '.join(FIXED_FIELDS)})")
    try:
        dataclasses.replace(RewardModelConfig(), **overrides).validate()
    except Exception as e:  # ConfigError names the field
        raise SystemExit(f"--set: {e}") from None


def _fail(msg):
    raise SystemExit(msg)


def _se(x):
    return float(x.std(ddof=1) / np.sqrt(len(x)))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=30, help="keys (seeds) per fit, one vmap")
    ap.add_argument("--key", type=int, default=1, help="keys are split(PRNGKey(KEY), KEYS)")
    ap.add_argument("--labels", default="24,40,60,100", help="comma-separated label counts")
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--patience", type=int, default=30)
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    ap.add_argument("--json", help="append one JSON line per label count to this file")
    args = ap.parse_args(argv)
    if args.keys < 2:
        raise SystemExit("--keys: need at least 2 keys for a standard error")
    labels = [int(x) for x in args.labels.split(",")]
    if any(n < 2 or n > 400 for n in labels):
        raise SystemExit("--labels: each count must be in 2..400 (the toy buffers hold 400)")

    overrides = parse_overrides(args.set, _fail)
    _check_overrides(overrides)

    import jax

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))
    from test_reward_toy import make_toy

    keys = jax.random.split(jax.random.PRNGKey(args.key), args.keys)
    f = make_toy(keys=keys, **overrides)
    print(f"reward toy: {args.keys} keys (PRNGKey({args.key})), epochs/patience "
          f"{args.epochs}/{args.patience}, overrides {overrides or 'none'}, device {jax.devices()[0]}")
    print("labels | pref | rating | unified | unified - (best - SE) | unified - mean(singles)")
    for n in labels:
        t0 = time.perf_counter()
        pref = f(n, 0, args.epochs, args.patience)
        rating = f(0, n, args.epochs, args.patience)
        unified = f(n // 2, n - n // 2, args.epochs, args.patience)
        best = pref if pref.mean() >= rating.mean() else rating
        margin = float(unified.mean() - (best.mean() - _se(best)))
        gain = unified - 0.5 * (pref + rating)
        row = {
            "labels": n, "keys": args.keys, "key": args.key, "overrides": overrides,
            "pref": [float(pref.mean()), _se(pref)], "rating": [float(rating.mean()), _se(rating)],
            "unified": [float(unified.mean()), _se(unified)], "criterion_margin": margin,
            "unified_minus_mean": [float(gain.mean()), _se(gain)],
            "seconds": time.perf_counter() - t0,
        }
        print(f"{n} | {pref.mean():.3f} +- {_se(pref):.3f} | {rating.mean():.3f} +- {_se(rating):.3f} | "
              f"{unified.mean():.3f} +- {_se(unified):.3f} | {margin:+.3f} "
              f"({'holds' if margin >= 0 else 'fails'}) | {gain.mean():+.3f} +- {_se(gain):.3f}", flush=True)
        if args.json:
            with open(args.json, "a") as fh:
                fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
