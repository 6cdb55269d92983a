"""Does active acquisition beat random at equal labels? Paired seeds on a probe env.

For each pair of presets (random first, BALD second) the whole pipeline runs ``--seeds``
seeds in one ``jax.jit(jax.vmap(train))`` call per preset, with the same keys, and the
final ``reward_corr`` (Spearman of learned vs true clip returns over the pool) is compared
seed by seed. Reported: each preset's mean +- SE, and the paired difference mean +- SE.

Usage::

    python -m benchmarks.acquisition_value --pairs pref-random:pref-bald,rating-random:rating-bald \\
        --seeds 12 --set reward.dropout=0.4

``--set`` applies to every preset (so both arms can share the reward model's dropout); the
base is ``smoke`` with a 64-64 reward net, 120 labels and the refit settings of
``tests/test_pipeline.py::test_reward_model_learns_on_the_probe_env``.
"""

from __future__ import annotations

import argparse
import ast
import json
import time

import numpy as np

BASE = {
    "reward.hidden": (64, 64), "reward.init_epochs": 50, "reward.refit_epochs": 20,
    "reward.refit_patience": 5, "reward.init_patience": 10, "run.budget": 120,
}


def final_corr(preset: str, seeds: int, overrides: dict):
    import jax

    from active_rlhf_jax.pipeline.config import replace
    from active_rlhf_jax.pipeline.train import make_train
    from configs.presets import get_preset

    cfg = replace(get_preset(preset), **{**BASE, **overrides}).validate()
    t = time.perf_counter()
    _, m, _ = jax.jit(jax.vmap(make_train(cfg).train))(
        jax.random.split(jax.random.PRNGKey(3), seeds))
    corr = np.asarray(m["reward_corr"])
    return corr[:, -1], corr.mean(0), time.perf_counter() - t


def _se(x):
    return float(np.std(x, ddof=1) / np.sqrt(len(x)))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pairs", default="pref-random:pref-bald,rating-random:rating-bald")
    p.add_argument("--seeds", type=int, default=12)
    p.add_argument("--env-preset", default="smoke")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)
    overrides = {}
    for item in a.set:
        k, v = item.split("=", 1)
        try:
            overrides[k] = ast.literal_eval(v)
        except (ValueError, SyntaxError):
            overrides[k] = v
    records = []
    for pair in a.pairs.split(","):
        rand, active = pair.split(":")
        res = {}
        for name in (rand, active):
            final, curve, secs = final_corr(f"{a.env_preset}+{name}", a.seeds, overrides)
            res[name] = final
            print(f"{name}: final reward_corr {final.mean():.3f} +- {_se(final):.3f} "
                  f"(per iteration {[round(float(x), 3) for x in curve]}, {secs:.0f} s)", flush=True)
        d = res[active] - res[rand]
        rec = dict(random=rand, active=active, seeds=a.seeds, overrides=overrides,
                   random_final=res[rand].tolist(), active_final=res[active].tolist(),
                   paired_diff=float(d.mean()), paired_diff_se=_se(d))
        print(f"{active} - {rand}: paired difference {d.mean():+.3f} +- {_se(d):.3f}", flush=True)
        records.append(rec)
    if a.json:
        with open(a.json, "a") as f:
            for r in records:
                f.write(json.dumps(r, default=str) + "\n")


if __name__ == "__main__":
    main()
