"""HalfCheetah, Hopper, Walker2d, Swimmer and Ant, as in Gymnasium 1.x (``*_v5.py``,
``hopper_v4.py``). Weights, ranges and noise scales are Gymnasium's defaults."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from active_rlhf_jax.envs.tasks._base import MujocoTask, cfrc_ext, float_dtype

INF = float("inf")


class _Forward(MujocoTask):
    """Reward = forward_reward_weight * x velocity (qpos[0]) - ctrl cost."""

    episode_length = 1000
    #: qpos entries left out of the observation (the x (and y) position).
    n_skip = 1
    #: Gymnasium v5 draws qvel noise from N(0, scale) for HalfCheetah/Ant, U(-s, s) else.
    normal_qvel_noise = False
    clip_qvel = False
    metric_keys = ("reward_forward", "reward_ctrl", "x_velocity")

    def _sample_init(self, key):
        key_qpos, key_qvel = jax.random.split(key)
        scale = self.options["reset_noise_scale"]
        nq, nv = self.init_qpos.size, self.init_qvel.size
        qpos = self.init_qpos + self._uniform(key_qpos, nq, scale)
        if self.normal_qvel_noise:
            noise = scale * jax.random.normal(key_qvel, (nv,), qpos.dtype)
        else:
            noise = self._uniform(key_qvel, nv, scale)
        return qpos, self.init_qvel + noise

    def _obs(self, data):
        qvel = jnp.clip(data.qvel, -10.0, 10.0) if self.clip_qvel else data.qvel
        return jnp.concatenate([data.qpos[self.n_skip :], qvel])

    def _x_velocity(self, before, after):
        return (after.qpos[0] - before.qpos[0]) / self.dt

    def _terms(self, before, after, action):
        x_velocity = self._x_velocity(before, after)
        forward = self.options["forward_reward_weight"] * x_velocity
        ctrl = self._ctrl_cost(action, self.options["ctrl_cost_weight"])
        metrics = {"reward_forward": forward, "reward_ctrl": -ctrl, "x_velocity": x_velocity}
        return forward - ctrl, jnp.zeros((), bool), metrics


class HalfCheetahV5(_Forward):
    env_id = "HalfCheetah-v5"
    xml_file = "half_cheetah.xml"
    frame_skip = 5
    normal_qvel_noise = True
    defaults = dict(forward_reward_weight=1.0, ctrl_cost_weight=0.1, reset_noise_scale=0.1)


class SwimmerV5(_Forward):
    env_id = "Swimmer-v5"
    xml_file = "swimmer.xml"
    frame_skip = 4
    n_skip = 2
    defaults = dict(forward_reward_weight=1.0, ctrl_cost_weight=1e-4, reset_noise_scale=0.1)


class _Healthy(_Forward):
    """Forward reward + healthy reward - ctrl cost; optional termination when unhealthy."""

    metric_keys = ("reward_forward", "reward_ctrl", "reward_survive", "x_velocity")

    def _is_healthy(self, data):
        raise NotImplementedError

    def _survive(self, healthy):
        return healthy.astype(float_dtype()) * self.options["healthy_reward"]

    def _extra_costs(self, after):
        return {}

    def _terms(self, before, after, action):
        x_velocity = self._x_velocity(before, after)
        forward = self.options["forward_reward_weight"] * x_velocity
        ctrl = self._ctrl_cost(action, self.options["ctrl_cost_weight"])
        healthy = self._is_healthy(after)
        survive = self._survive(healthy)
        extra = self._extra_costs(after)
        reward = forward + survive - ctrl - sum(extra.values(), jnp.zeros(()))
        metrics = {
            "reward_forward": forward,
            "reward_ctrl": -ctrl,
            "reward_survive": survive,
            "x_velocity": x_velocity,
            **{k: -v for k, v in extra.items()},
        }
        terminated = jnp.logical_and(~healthy, self.options["terminate_when_unhealthy"])
        return reward, terminated, metrics


_HOPPER_DEFAULTS = dict(
    forward_reward_weight=1.0,
    ctrl_cost_weight=1e-3,
    healthy_reward=1.0,
    terminate_when_unhealthy=False,
    healthy_state_range=(-100.0, 100.0),
    healthy_z_range=(0.7, INF),
    healthy_angle_range=(-0.2, 0.2),
    reset_noise_scale=5e-3,
)


def _inside(x, bounds):
    return jnp.logical_and(bounds[0] < x, x < bounds[1])


class HopperV5(_Healthy):
    env_id = "Hopper-v5"
    xml_file = "hopper.xml"
    frame_skip = 4
    clip_qvel = True
    defaults = _HOPPER_DEFAULTS

    def _is_healthy(self, data):
        o = self.options
        state = jnp.concatenate([data.qpos, data.qvel])[2:]
        return (
            jnp.all(_inside(state, o["healthy_state_range"]))
            & _inside(data.qpos[1], o["healthy_z_range"])
            & _inside(data.qpos[2], o["healthy_angle_range"])
        )


class HopperV4(HopperV5):
    """Hopper-v4: the healthy reward is paid when ``is_healthy or terminate_when_unhealthy``."""

    env_id = "Hopper-v4"

    def _survive(self, healthy):
        paid = jnp.logical_or(healthy, self.options["terminate_when_unhealthy"])
        return paid.astype(float_dtype()) * self.options["healthy_reward"]


class Walker2dV5(_Healthy):
    env_id = "Walker2d-v5"
    xml_file = "walker2d_v5.xml"
    frame_skip = 4
    clip_qvel = True
    defaults = dict(
        forward_reward_weight=1.0,
        ctrl_cost_weight=1e-3,
        healthy_reward=1.0,
        terminate_when_unhealthy=False,
        healthy_z_range=(0.8, 2.0),
        healthy_angle_range=(-1.0, 1.0),
        reset_noise_scale=5e-3,
    )

    def _is_healthy(self, data):
        o = self.options
        return _inside(data.qpos[1], o["healthy_z_range"]) & _inside(
            data.qpos[2], o["healthy_angle_range"]
        )


class AntV5(_Healthy):
    """Ant-v5: torso-xy velocity, contact forces (clipped ``cfrc_ext[1:]``) in obs and cost."""

    env_id = "Ant-v5"
    xml_file = "ant.xml"
    frame_skip = 5
    n_skip = 2
    normal_qvel_noise = True
    need_cfrc_ext = True
    metric_keys = (
        "reward_forward",
        "reward_ctrl",
        "reward_survive",
        "reward_contact",
        "x_velocity",
        "y_velocity",
    )
    defaults = dict(
        forward_reward_weight=1.0,
        ctrl_cost_weight=0.5,
        contact_cost_weight=5e-4,
        healthy_reward=1.0,
        terminate_when_unhealthy=False,
        healthy_z_range=(0.2, 1.0),
        contact_force_range=(-1.0, 1.0),
        reset_noise_scale=0.1,
    )
    main_body = 1  # Gymnasium's default main_body: the torso

    def _contact_forces(self, data):
        lo, hi = self.options["contact_force_range"]
        return jnp.clip(cfrc_ext(data), lo, hi)

    def _obs(self, data):
        forces = self._contact_forces(data)[1:].reshape(-1)
        return jnp.concatenate([data.qpos[2:], data.qvel, forces.astype(data.qpos.dtype)])

    def _x_velocity(self, before, after):
        return (after.xpos[self.main_body, 0] - before.xpos[self.main_body, 0]) / self.dt

    def _is_healthy(self, data):
        lo, hi = self.options["healthy_z_range"]
        state = jnp.concatenate([data.qpos, data.qvel])
        z = data.qpos[2]
        return jnp.all(jnp.isfinite(state)) & (lo <= z) & (z <= hi)

    def _extra_costs(self, after):
        weight = self.options["contact_cost_weight"]
        return {"reward_contact": weight * jnp.sum(jnp.square(self._contact_forces(after)))}

    def _terms(self, before, after, action):
        reward, terminated, metrics = super()._terms(before, after, action)
        body = self.main_body
        metrics["y_velocity"] = (after.xpos[body, 1] - before.xpos[body, 1]) / self.dt
        return reward, terminated, metrics
