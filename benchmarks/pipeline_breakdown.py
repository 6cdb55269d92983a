"""Where an RLHF iteration's time goes: the pipeline with parts switched off, one seed.

Each variant is the ``--preset`` config with some fields changed; one iteration per
jitted call (``run_chunk(state, 1)``), compiled and warmed by one call, then the mean of
``--repeats`` calls is reported. Differences between variants estimate each part's cost:

* ``full``: the preset as it is.
* ``random-acq``: ``acquisition.method=random`` with a fixed 50/50 split (no BALD
  selection; the posterior samples and BALD means for the logs are still computed; the
  ``information`` split refuses random scores, which are not in nats).
* ``refit-1``: ``reward.refit_epochs=1`` (refit cost minus one epoch).
* ``ground-truth``: ``run.feedback=none`` (PPO only: no relabelling, harvest,
  acquisition, teacher or refit).

Usage::

    python -m benchmarks.pipeline_breakdown --preset default --repeats 2
"""

from __future__ import annotations

import argparse
import time

VARIANTS = {
    "full": {},
    "random-acq": {"acquisition.method": "random", "acquisition.allocation": "fixed"},
    "refit-1": {"reward.refit_epochs": 1},
    "ground-truth": {"run.feedback": "none"},
}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="default")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--variants", default=",".join(VARIANTS))
    a = p.parse_args(argv)

    import jax

    from active_rlhf_jax.config import replace
    from active_rlhf_jax.pipeline.train import make_train
    from configs.presets import get_preset

    for name in a.variants.split(","):
        cfg = replace(get_preset(a.preset), **VARIANTS[name]).validate()
        pipe = make_train(cfg)
        chunk = jax.jit(lambda s, p=pipe: p.run_chunk(s, 1))
        state = jax.block_until_ready(jax.jit(pipe.init)(jax.random.PRNGKey(0)))
        state, _ = jax.block_until_ready(chunk(state))
        t = time.perf_counter()
        for _ in range(a.repeats):
            state, _ = jax.block_until_ready(chunk(state))
        dt = (time.perf_counter() - t) / a.repeats
        print(f"{name}: {dt:.2f} s per iteration, {cfg.steps_per_iteration / dt:,.0f} PPO env "
              f"steps/s", flush=True)


if __name__ == "__main__":
    main()
