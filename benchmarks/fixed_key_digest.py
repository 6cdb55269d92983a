"""Fingerprints of whole runs at a fixed key, to show a refactor changed no behaviour.

For each preset, ``make_train(config).train`` runs for two seeds (``PRNGKey(key)`` split in
two) in one jitted call; every metric of every iteration, the final evaluation and every
leaf of the final state are hashed (SHA-256 of the float32/int32 bytes). Run it on the
commit before and after a refactor: equal digests mean bitwise-equal runs.

Usage::

    python -m benchmarks.fixed_key_digest [--presets smoke,smoke+pref-bald] [--json out.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json

import numpy as np

DEFAULT_PRESETS = (
    "smoke",  # both modalities, information allocation
    "smoke+pref-bald",
    "smoke+rating-random",
    "smoke+bald-fixed+ensemble",
    "reference-smoke",  # compat path, fresh-episode collection, growing pool
    "smoke+ground-truth",
)


def _digest(tree) -> str:
    import jax

    h = hashlib.sha256()
    for leaf in jax.tree_util.tree_leaves(tree):
        h.update(np.ascontiguousarray(np.asarray(leaf)).tobytes())
    return h.hexdigest()[:16]


def digest_preset(name: str, key: int = 0) -> dict:
    import jax

    from active_rlhf_jax.pipeline.train import make_train
    from configs.presets import get_preset

    cfg = get_preset(name)
    pipe = make_train(cfg)
    keys = jax.random.split(jax.random.PRNGKey(key), 2)
    state, metrics, (ret, _) = jax.block_until_ready(jax.jit(jax.vmap(pipe.train))(keys))
    out = {k: _digest(v) for k, v in sorted(metrics.items())}
    out["final_eval"] = _digest(ret)
    out["final_eval_mean"] = float(np.mean(ret))
    out["final_state"] = _digest(state)
    # The state's structure may change in a refactor; its policy and reward params may not.
    out["ppo_params"] = _digest((state.ppo.actor_params, state.ppo.critic_params))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--presets", default=",".join(DEFAULT_PRESETS))
    p.add_argument("--key", type=int, default=0)
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)
    res = {}
    for name in a.presets.split(","):
        res[name] = digest_preset(name, a.key)
        print(name, json.dumps(res[name]), flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
