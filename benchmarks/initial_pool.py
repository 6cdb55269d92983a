"""Clips in the initial pool of each seed of a recorded run, and the initial labels the
initial phase spends (the pipeline's ``init`` only: warm-up, harvest, initial queries, first
fit; one jitted vmap over the run's seeds, with the code as it is now).

A warm-up whose episodes all end before a clip's length (``run.segment_length``) leaves the
pool empty; before 2026-12-04 the initial batch then still asked about empty slots.

Usage::

    python -m benchmarks.initial_pool RUN_DIR/config.json [...]
"""

from __future__ import annotations

import json
import sys

import jax
import numpy as np

from active_rlhf_jax.config import load_config_dict
from active_rlhf_jax.pipeline.runner import batch_inputs
from active_rlhf_jax.pipeline.train import make_train


def initial_pool(config_path: str) -> dict:
    """``{"config": path, "clips": {seed: clips in the initial pool},
    "labels": {seed: initial labels spent}}``."""
    cfg = load_config_dict(json.load(open(config_path)))
    pipe = make_train(cfg)
    state = jax.jit(jax.vmap(pipe.init))(batch_inputs([cfg])[0])
    clips = np.asarray(state.pool.valid).sum(-1)
    labels = np.asarray(state.counters.labels_used)
    return {"config": config_path,
            "clips": {cfg.seed + i: int(v) for i, v in enumerate(clips)},
            "labels": {cfg.seed + i: int(v) for i, v in enumerate(labels)}}


if __name__ == "__main__":
    for path in sys.argv[1:]:
        print(json.dumps(initial_pool(path)), flush=True)
