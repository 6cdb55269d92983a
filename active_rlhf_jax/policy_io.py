"""Save and load the trained policies of a run directory (all seeds at once) with orbax.

Layout (``run_dir/policy/``)::

    policy/final/              the final policy of every seed (``step=None``)
    policy/step_000012345/     a policy saved at env step 12345 (``step=12345``)
        state/                 orbax checkpoint of the policy pytree, every leaf with a
                               leading seed axis [S, ...]:
                               {"actor_params", "critic_params",
                                "obs_norm": {"mean", "var", "count"}}
        meta.json              env_id, env_options, ppo_config (PPOConfig as a dict), seeds,
                               step, observation/action sizes and action bounds

Only what acting needs is saved: the optimiser state is not (nothing resumes PPO from a
policy checkpoint; the pipeline checkpoints its whole state separately). The observation
normaliser *is* saved, unlike the reference project (seed_spec 19.1 item 2).

Atomicity: everything is written into a hidden temporary folder next to the target and
moved into place with ``os.replace``; a reader never sees a half-written checkpoint. When
the target already exists it is first renamed aside and deleted after the move.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import shutil
import uuid
from types import SimpleNamespace
from typing import Any, NamedTuple

import numpy as np

POLICY_DIR = "policy"
FINAL = "final"
META_FILE = "meta.json"
STATE_DIR = "state"
FORMAT_VERSION = 1


class LoadedPolicy(NamedTuple):
    """A run's saved policies, ready to act.

    Attributes:
        ppo: the ``PPO`` bundle (``act``) built from the saved config and sizes.
        state: ``PPOState`` batched over seeds (leading axis ``[S]``); the optimiser state
            is a fresh initialisation (not saved).
        env_id, env_options: how to rebuild the environment.
        seeds: seed ids ``[S]``.
        step: the env step of the checkpoint (None for the final policy).
        meta: the parsed ``meta.json``.
        path: the checkpoint folder.
    """

    ppo: Any
    state: Any
    env_id: str
    env_options: dict
    seeds: list[int]
    step: int | None
    meta: dict
    path: pathlib.Path


def policy_path(run_dir, step: int | None = None) -> pathlib.Path:
    """Folder of the final policy (``step=None``) or of the one saved at ``step``."""
    name = FINAL if step is None else f"step_{int(step):09d}"
    return pathlib.Path(run_dir) / POLICY_DIR / name


def available_steps(run_dir) -> list[int]:
    """Env steps of the intermediate policies saved in ``run_dir`` (sorted)."""
    root = pathlib.Path(run_dir) / POLICY_DIR
    if not root.is_dir():
        return []
    steps = []
    for p in root.iterdir():
        if p.name.startswith("step_") and (p / META_FILE).is_file():
            steps.append(int(p.name[len("step_") :]))
    return sorted(steps)


def _policy_tree(state) -> dict:
    return {
        "actor_params": state.actor_params,
        "critic_params": state.critic_params,
        "obs_norm": {
            "mean": state.obs_norm.mean,
            "var": state.obs_norm.var,
            "count": state.obs_norm.count,
        },
    }


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    return x


def save_policy(
    run_dir,
    env_id: str,
    env_options: dict | None,
    ppo_config_dict,
    ppo_state,
    step: int | None = None,
    seeds=None,
    env=None,
) -> pathlib.Path:
    """Save the policies of all seeds.

    Args:
        run_dir: the run directory (``policy/`` is created inside).
        env_id: environment id the policy was trained on.
        env_options: options passed to ``envs.make`` (JSON-able).
        ppo_config_dict: ``config.to_dict(PPOConfig)`` (a ``PPOConfig`` also works).
        ppo_state: ``PPOState`` batched over seeds: every leaf ``[S, ...]``.
        step: env step of an intermediate policy; None for the final one.
        seeds: seed ids ``[S]`` (default ``0..S-1``).
        env: the env (or anything with ``action_low``/``action_high``); only read for the
            action bounds, which are otherwise derived from ``envs.make(env_id)``.

    Returns:
        The checkpoint folder.
    """
    import jax
    import orbax.checkpoint as ocp

    if dataclasses.is_dataclass(ppo_config_dict):
        ppo_config_dict = dataclasses.asdict(ppo_config_dict)
    tree = jax.tree.map(lambda x: np.asarray(jax.device_get(x)), _policy_tree(ppo_state))
    mean = tree["obs_norm"]["mean"]
    if mean.ndim != 2:
        raise ValueError(
            f"ppo_state: expected a state batched over seeds (obs_norm.mean [S, obs]), "
            f"got obs_norm.mean of shape {mean.shape}"
        )
    num_seeds, obs_size = mean.shape
    seeds = list(range(num_seeds)) if seeds is None else [int(s) for s in seeds]
    if len(seeds) != num_seeds:
        raise ValueError(f"seeds: {len(seeds)} ids for a state batched over {num_seeds} seeds")
    if env is None:
        from active_rlhf_jax import envs as envs_lib

        env = envs_lib.make(env_id, backend="mujoco", **(env_options or {}))
    low = np.asarray(env.action_low, np.float64)
    high = np.asarray(env.action_high, np.float64)
    meta = {
        "format": FORMAT_VERSION,
        "env_id": env_id,
        "env_options": _jsonable(dict(env_options or {})),
        "ppo_config": _jsonable(ppo_config_dict),
        "seeds": seeds,
        "step": None if step is None else int(step),
        "observation_size": int(obs_size),
        "action_size": int(low.shape[0]),
        "action_low": low.tolist(),
        "action_high": high.tolist(),
    }

    target = policy_path(run_dir, step)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".tmp-{target.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        # Only the calling process takes part (under jax.distributed the runner calls this
        # from process 0 alone, with host arrays), so orbax must not wait for the others.
        ckptr = ocp.StandardCheckpointer(
            multiprocessing_options=ocp.options.MultiprocessingOptions(
                primary_host=jax.process_index(), active_processes={jax.process_index()}))
        ckptr.save((tmp / STATE_DIR).resolve(), tree)
        ckptr.wait_until_finished()
        ckptr.close()
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2))
        old = None
        if target.exists():
            old = target.parent / f".old-{target.name}-{uuid.uuid4().hex[:8]}"
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def load_policy(run_dir, step: int | None = None) -> LoadedPolicy:
    """Load the final policy (``step=None``; falls back to the latest intermediate one
    when the run has no final policy) or the one saved at ``step``.

    Raises:
        FileNotFoundError: no such checkpoint (the message lists the saved steps).
    """
    import jax
    import orbax.checkpoint as ocp

    from active_rlhf_jax.config import PPOConfig, from_dict
    from active_rlhf_jax.ppo import make_ppo

    path = policy_path(run_dir, step)
    if step is None and not (path / META_FILE).is_file():
        steps = available_steps(run_dir)
        if steps:
            path = policy_path(run_dir, steps[-1])
    if not (path / META_FILE).is_file():
        raise FileNotFoundError(
            f"{path}: no saved policy; final policy: "
            f"{(policy_path(run_dir) / META_FILE).is_file()}, saved steps: "
            f"{available_steps(run_dir)}"
        )
    meta = json.loads((path / META_FILE).read_text())
    config = from_dict(PPOConfig, meta["ppo_config"])
    spec = SimpleNamespace(
        num_envs=config.num_envs,
        observation_size=meta["observation_size"],
        action_size=meta["action_size"],
        action_low=np.asarray(meta["action_low"], np.float32),
        action_high=np.asarray(meta["action_high"], np.float32),
    )
    # anneal_lr only shapes the optimiser, which acting never uses.
    ppo = make_ppo(dataclasses.replace(config, anneal_lr=False), spec)
    num_seeds = len(meta["seeds"])
    template = jax.vmap(ppo.init)(jax.random.split(jax.random.PRNGKey(0), num_seeds))
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), _policy_tree(template)
    )
    ckptr = ocp.StandardCheckpointer()
    tree = ckptr.restore((path / STATE_DIR).resolve(), abstract)
    ckptr.close()
    state = template.replace(
        actor_params=tree["actor_params"],
        critic_params=tree["critic_params"],
        obs_norm=template.obs_norm.replace(**tree["obs_norm"]),
    )
    return LoadedPolicy(
        ppo=ppo,
        state=state,
        env_id=meta["env_id"],
        env_options=meta["env_options"],
        seeds=meta["seeds"],
        step=meta["step"],
        meta=meta,
        path=path,
    )
