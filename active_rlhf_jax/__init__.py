"""active-rlhf-jax: active RLHF from preferences and ratings on MuJoCo, as one JAX program."""

__version__ = "0.1.0"
