"""Does active acquisition beat random at equal labels? Paired seeds on a probe env.

For each pair of presets (random first, BALD second) the whole pipeline runs ``--seeds``
seeds in one ``jax.jit(jax.vmap(train))`` call per preset, with the same keys, and the
final ``reward_corr`` (Spearman of learned vs true clip returns over the pool) is compared
seed by seed. Reported: each preset's mean +- SE, and the paired difference mean +- SE.

Usage::

    python -m benchmarks.acquisition_value --env-preset acq-probe --seeds 24 --key 0 \\
        --pairs pref-random:pref-bald,unified-random:bald-fixed,unified-random:bald-info

``--env-preset acq-probe`` (probe/linear, a 256-clip pool with 64 new segments per
iteration: configs/presets.py) is the setting of tests/test_acquisition_value.py. With
``--env-preset smoke`` (the earlier measurements on probe/target) the base adds a 64-64
reward net, 120 labels and the refit settings of
``tests/test_pipeline.py::test_reward_model_learns_on_the_probe_env``. ``--set`` applies to
every preset. Keys are ``split(PRNGKey(--key), --seeds)``, the same for every arm.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from benchmarks._overrides import parse_overrides

BASE = {
    "reward.hidden": (64, 64), "reward.init_epochs": 50, "reward.refit_epochs": 20,
    "reward.refit_patience": 5, "reward.init_patience": 10, "run.budget": 120,
}


def final_corr(preset: str, seeds: int, overrides: dict, key: int = 3, base: dict = BASE):
    import jax

    from active_rlhf_jax.config import replace
    from active_rlhf_jax.pipeline.train import make_train
    from configs.presets import get_preset

    cfg = replace(get_preset(preset), **{**base, **overrides}).validate()
    t = time.perf_counter()
    _, m, _ = jax.jit(jax.vmap(make_train(cfg).train))(
        jax.random.split(jax.random.PRNGKey(key), seeds))
    corr = np.asarray(m["reward_corr"])
    return corr[:, -1], corr.mean(0), time.perf_counter() - t


def _se(x):
    return float(np.std(x, ddof=1) / np.sqrt(len(x)))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pairs", default="pref-random:pref-bald,rating-random:rating-bald")
    p.add_argument("--seeds", type=int, default=12)
    p.add_argument("--env-preset", default="smoke")
    p.add_argument("--key", type=int, default=3, help="PRNGKey of the seed keys (default 3)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)
    overrides = parse_overrides(a.set, p.error)
    records, res = [], {}  # an arm shared by several pairs runs once
    for pair in a.pairs.split(","):
        rand, active = pair.split(":")
        for name in (rand, active):
            if name in res:
                continue
            final, curve, secs = final_corr(f"{a.env_preset}+{name}", a.seeds, overrides, a.key,
                                            BASE if a.env_preset == "smoke" else {})
            res[name] = final
            print(f"{name}: final reward_corr {final.mean():.3f} +- {_se(final):.3f} "
                  f"(per iteration {[round(float(x), 3) for x in curve]}, {secs:.0f} s)", flush=True)
        d = res[active] - res[rand]
        rec = dict(random=rand, active=active, seeds=a.seeds, overrides=overrides,
                   env_preset=a.env_preset, key=a.key,
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
