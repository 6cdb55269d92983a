"""Save/load a policy: actor and critic params with the observation statistics.

Layout of ``<dir>/``: ``policy.msgpack`` (flax msgpack of ``{"actor_params",
"critic_params", "obs_norm": {"mean", "var", "count"}}``) and ``ppo_config.json``.
Optimiser state is not saved (the reference never resumes PPO from a checkpoint).
"""

from __future__ import annotations

import json
import pathlib

from flax import serialization

from active_rlhf_jax.config_utils import from_dict, to_dict
from active_rlhf_jax.ppo.agent import PPOState
from active_rlhf_jax.ppo.config import PPOConfig


def _policy_tree(state: PPOState) -> dict:
    return {
        "actor_params": state.actor_params,
        "critic_params": state.critic_params,
        "obs_norm": {
            "mean": state.obs_norm.mean,
            "var": state.obs_norm.var,
            "count": state.obs_norm.count,
        },
    }


def save_policy(directory, state: PPOState, config: PPOConfig) -> None:
    """Write one (unbatched) policy to ``directory``."""
    d = pathlib.Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    (d / "policy.msgpack").write_bytes(serialization.to_bytes(_policy_tree(state)))
    (d / "ppo_config.json").write_text(json.dumps(to_dict(config), indent=2))


def load_policy(directory, template: PPOState) -> tuple[PPOState, PPOConfig]:
    """Restore params and obs statistics into ``template`` (e.g. ``ppo.init(key)``)."""
    d = pathlib.Path(directory)
    tree = serialization.from_bytes(_policy_tree(template), (d / "policy.msgpack").read_bytes())
    config = from_dict(PPOConfig, json.loads((d / "ppo_config.json").read_text()))
    state = template.replace(
        actor_params=tree["actor_params"],
        critic_params=tree["critic_params"],
        obs_norm=template.obs_norm.replace(**tree["obs_norm"]),
    )
    return state, config
