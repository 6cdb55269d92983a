"""Reacher-v4 (11-dim obs, reward from the state *before* the step) and Reacher-v5."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import mujoco

from active_rlhf_jax.envs.tasks._base import MujocoTask, float_dtype, load_model


class ReacherV5(MujocoTask):
    env_id = "Reacher-v5"
    xml_file = "reacher.xml"
    frame_skip = 2
    episode_length = 50
    defaults = dict(reward_dist_weight=1.0, reward_control_weight=1.0)
    metric_keys = ("reward_dist", "reward_ctrl")
    #: Components of fingertip - target in the observation (v5 drops z).
    n_vec = 2

    def __init__(self, *args, **kwargs):
        model = load_model(self.xml_file)
        self._fingertip = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "fingertip")
        self._target = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "target")
        super().__init__(*args, **kwargs)

    def _sample_init(self, key):
        key_qpos, key_goal_r, key_goal_a, key_qvel = jax.random.split(key, 4)
        dtype = float_dtype()
        qpos = self.init_qpos + self._uniform(key_qpos, self.init_qpos.size, 0.1)
        # Gymnasium rejection-samples U([-0.2, 0.2]^2) until |goal| < 0.2, i.e. a goal
        # uniform on the disc of radius 0.2; sampled here directly (same distribution).
        radius = 0.2 * jnp.sqrt(jax.random.uniform(key_goal_r, (), dtype))
        angle = 2 * jnp.pi * jax.random.uniform(key_goal_a, (), dtype)
        goal = jnp.stack([radius * jnp.cos(angle), radius * jnp.sin(angle)])
        qpos = qpos.at[-2:].set(goal)
        qvel = self.init_qvel + self._uniform(key_qvel, self.init_qvel.size, 0.005)
        return qpos, qvel.at[-2:].set(0.0)

    def _vec(self, data):
        # xpos after a step is the kinematics of the last substep's start, as Gymnasium reads.
        return data.xpos[self._fingertip] - data.xpos[self._target]

    def _obs(self, data):
        theta = data.qpos[:2]
        return jnp.concatenate(
            [
                jnp.cos(theta),
                jnp.sin(theta),
                data.qpos[2:],
                data.qvel[:2],
                self._vec(data)[: self.n_vec],
            ]
        )

    def _terms(self, before, after, action):
        o = self.options
        dist = -jnp.linalg.norm(self._vec(after)) * o["reward_dist_weight"]
        ctrl = -jnp.sum(jnp.square(action)) * o["reward_control_weight"]
        return dist + ctrl, jnp.zeros((), bool), {"reward_dist": dist, "reward_ctrl": ctrl}


class ReacherV4(ReacherV5):
    env_id = "Reacher-v4"
    defaults = {}
    n_vec = 3

    def _terms(self, before, after, action):
        # Reacher-v4 computes the reward before do_simulation, from the pre-step state.
        dist = -jnp.linalg.norm(self._vec(before))
        ctrl = -jnp.sum(jnp.square(action))
        return dist + ctrl, jnp.zeros((), bool), {"reward_dist": dist, "reward_ctrl": ctrl}
