"""The task and its physics backend (``--env.*``)."""

from __future__ import annotations

from dataclasses import dataclass

from active_rlhf_jax.config.base import ConfigError, check_choice, option


@dataclass(frozen=True)
class EnvConfig:
    """Which task and physics backend."""

    env_id: str = option("HalfCheetah-v5", help="Gymnasium id (HalfCheetah-v5, Hopper-v4, "
                         "...), alias, or probe/... id.")
    backend: str = option("auto", help="physics backend: auto (C MuJoCo on CPU, MJX on "
                          "accelerators), mjx, mujoco.")
    terminate_when_unhealthy: bool = option(False, help="end episodes when the robot is "
                                            "unhealthy (reference: False).")
    fidelity: str = option("gymnasium", help="solver settings: gymnasium (the XML's), ls8 "
                           "(line search capped at 8: MJX's vmapped step ~4x faster on a GPU) "
                           "or fast (4 iterations, line search 8).")

    def validate(self) -> EnvConfig:
        from active_rlhf_jax.envs import BACKENDS, known_ids

        if self.env_id not in known_ids():
            raise ConfigError("env_id", f"unknown environment {self.env_id!r}")
        check_choice("backend", self.backend, BACKENDS)
        check_choice("fidelity", self.fidelity, ("gymnasium", "ls8", "fast"))
        return self

    def options(self) -> dict:
        if self.env_id.startswith("probe/"):
            return {}
        options = {"fidelity": self.fidelity}
        if self.terminate_when_unhealthy:  # tasks without a health check reject the option
            options["terminate_when_unhealthy"] = True
        return options
