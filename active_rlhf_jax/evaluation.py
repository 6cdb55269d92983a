"""Evaluate saved policies: deterministic episodes in our envs or in Gymnasium's, and video.

* ``backend="ours"`` (``envs.make`` with ``auto``: C MuJoCo on CPUs, MJX on accelerators),
  ``"mujoco"`` or ``"mjx"``: every seed and episode runs in one jitted ``lax.scan`` over the
  horizon, vmapped over seeds and episodes.
* ``backend="gymnasium"``: Gymnasium's own environment with the same id (C MuJoCo, its own
  wrappers and reset-noise draws), built with the run's task options (e.g.
  ``terminate_when_unhealthy=False``, which is our default and not Gymnasium's: see
  :func:`gym_task_options`), all seeds x episodes stepped in lock-step on the host with
  one batched, jitted ``act`` call per step. A note on stderr names the options set
  against Gymnasium's defaults and whatever still differs from our backend.

In both, the policy is the Gaussian mean (deterministic) applied to the observation
normalised with the seed's saved statistics, and the episode return is the sum of the true
task reward until termination or the horizon (``max_steps``, default the task's).

The 95% CI of the mean return is the Student-t interval over the per-seed means (over the
episodes when there is a single seed): see :mod:`active_rlhf_jax.analysis.stats`.
"""

from __future__ import annotations

import inspect
import os
import pathlib
import sys

import numpy as np

from active_rlhf_jax.config import ConfigError

OUR_BACKENDS = {"ours": "auto", "mjx": "mjx", "mujoco": "mujoco"}
BACKENDS = tuple(OUR_BACKENDS) + ("gymnasium",)


def _seed_slice(state, i: int):
    import jax

    return jax.tree.map(lambda x: x[i], state)


def _gym_id(env_id: str) -> str:
    from active_rlhf_jax.envs import registry

    return registry.ALIASES.get(env_id, env_id)


def gym_task_options(env_id: str, env_options: dict) -> tuple[dict, list[str]]:
    """The run's task options as Gymnasium's constructor takes them, and what still differs.

    Our task's effective options (its defaults merged with the run's ``env_options``, e.g.
    ``terminate_when_unhealthy=False``, which is not Gymnasium's default) are all passed
    explicitly, so Gymnasium's own defaults never decide the task; the frame skip is
    passed where the constructor takes it and checked where it does not.

    Returns:
        ``(kwargs for gym.make, differences)``: each difference is one sentence naming
        what Gymnasium's env does differently from our backend under these options.
    """
    import gymnasium as gym
    from gymnasium.envs.registration import load_env_creator

    from active_rlhf_jax import envs as envs_lib

    gid = _gym_id(env_id)
    try:
        spec = gym.spec(gid)
    except gym.error.Error:
        raise ConfigError("backend", f"gymnasium has no environment {gid!r} (probe and other "
                          "package-only environments run only with our backends)") from None
    creator = (
        load_env_creator(spec.entry_point)
        if isinstance(spec.entry_point, str)
        else spec.entry_point
    )
    params = inspect.signature(creator).parameters
    ours = envs_lib.make(env_id, backend="mujoco", **(env_options or {}))
    wanted = {**ours.options, "frame_skip": ours.frame_skip}
    passed, diffs = {}, []
    for k, v in wanted.items():
        if k in params:
            passed[k] = v
        elif k != "frame_skip":  # checked on the built env below
            diffs.append(f"option {k}={v!r} is not a Gymnasium option and is not applied")
    fidelity = getattr(ours, "fidelity", "gymnasium")
    if fidelity != "gymnasium":
        diffs.append(
            f"fidelity={fidelity!r} (other solver settings) is ours only: Gymnasium "
            "steps with the XML's solver settings"
        )
    noise = ours.options.get("reset_noise_scale")
    if noise != 0.0 or "Reacher" in gid:  # Reacher also draws its goal at reset
        diffs.append(
            "initial states are drawn by Gymnasium's RNG (same distribution, other draws"
            + (f", reset_noise_scale={noise})" if noise is not None else ")")
        )
    return passed, diffs


def make_gym_env(env_id: str, env_options: dict, max_steps: int | None, verbose=True, **kwargs):
    """Gymnasium's env for ``env_id`` built with the run's task options.

    See :func:`gym_task_options`; with ``verbose`` one note on stderr says which options
    were set against Gymnasium's defaults and what still differs from our backend.
    """
    import gymnasium as gym

    passed, diffs = gym_task_options(env_id, env_options)
    gid = _gym_id(env_id)
    if max_steps is not None:
        kwargs["max_episode_steps"] = int(max_steps)
    from active_rlhf_jax.envs.quiet import mujoco_warnings

    with mujoco_warnings():  # Gymnasium compiles the same XML (settotalmass deprecation)
        env = gym.make(gid, **passed, **kwargs)
    ours_skip = passed.pop("frame_skip", None)
    skip = getattr(env.unwrapped, "frame_skip", ours_skip)
    if ours_skip is not None and skip != ours_skip:  # pragma: no cover - tasks copy Gymnasium's
        diffs.insert(0, f"frame skip {skip} (ours {ours_skip})")
    if verbose:
        print(describe_gym_options(gid, passed, diffs), file=sys.stderr)
    return env


def describe_gym_options(gid: str, passed: dict, diffs: list[str]) -> str:
    """One line: the run's options that differ from Gymnasium's defaults, then ``diffs``."""
    import gymnasium as gym
    from gymnasium.envs.registration import load_env_creator

    spec = gym.spec(gid)
    creator = (
        load_env_creator(spec.entry_point) if isinstance(spec.entry_point, str) else spec.entry_point
    )
    params = inspect.signature(creator).parameters
    changed = [
        f"{k}={v!r} (Gymnasium's default: {params[k].default!r})"
        for k, v in passed.items()
        if k in params and _differs(v, params[k].default)
    ]
    head = f"note: gymnasium {gid} with the run's task options"
    head += ": " + ", ".join(changed) if changed else " (all equal to Gymnasium's defaults)"
    return head + "; differs from our backend: " + ("; ".join(diffs) or "nothing")


def _differs(a, b) -> bool:
    try:
        return bool(np.any(np.asarray(a, dtype=float) != np.asarray(b, dtype=float)))
    except (TypeError, ValueError):
        return a != b


def _horizon(env_episode_length: int, max_steps: int | None) -> int:
    if max_steps is None:
        return int(env_episode_length)
    if max_steps <= 0:
        raise ConfigError("max_steps", f"must be positive, got {max_steps}")
    return min(int(max_steps), int(env_episode_length))


def evaluate_ours(
    policy, episodes: int, backend: str = "ours", max_steps: int | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic episodes in our envs (the rollout of the pipeline's final evaluation,
    :func:`~active_rlhf_jax.ppo.episodes.deterministic_episodes`).

    Args:
        policy: a :class:`~active_rlhf_jax.policy_io.LoadedPolicy` (``S`` seeds).
        episodes: episodes per seed ``N``.
        backend: ``ours`` | ``mujoco`` | ``mjx``.
        max_steps: horizon (default: the task's episode length).
        seed: PRNG seed of the initial-state noise.

    Returns:
        ``(returns [S, N], lengths [S, N])``.
    """
    import jax

    from active_rlhf_jax import envs as envs_lib
    from active_rlhf_jax.envs.host_call import raise_pending
    from active_rlhf_jax.ppo.episodes import deterministic_episodes

    env = envs_lib.make(policy.env_id, backend=OUR_BACKENDS[backend], **policy.env_options)
    horizon = _horizon(env.episode_length, max_steps)
    batch = envs_lib.TrainingEnv(env, episodes)

    def per_seed(ppo_state, key):
        return deterministic_episodes(policy.ppo.act, ppo_state, batch, key, horizon)

    num_seeds = len(policy.seeds)
    keys = jax.random.split(jax.random.PRNGKey(seed), num_seeds)
    returns, lengths = jax.jit(jax.vmap(per_seed))(policy.state, keys)
    returns, lengths = np.asarray(returns, np.float64), np.asarray(lengths, np.int64)
    raise_pending()  # a host step (C MuJoCo) that raised inside the program
    return returns, lengths


def evaluate_gymnasium(
    policy, episodes: int, max_steps: int | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic episodes in Gymnasium's env with the same id (see :func:`evaluate_ours`).

    The env is built with the run's task options (:func:`gym_task_options`), so e.g. a run
    trained with ``terminate_when_unhealthy=False`` is evaluated on fixed-horizon episodes
    here too. Episode ``j`` of seed row ``i`` is reset with ``seed + i * episodes + j``.
    """
    import jax
    import jax.numpy as jnp

    num_seeds = len(policy.seeds)
    gym_envs = [
        make_gym_env(policy.env_id, policy.env_options, max_steps, verbose=k == 0)
        for k in range(num_seeds * episodes)
    ]
    act = jax.jit(
        jax.vmap(
            jax.vmap(
                lambda s, o: policy.ppo.act(s, o, jax.random.PRNGKey(0), True), in_axes=(None, 0)
            )
        )
    )
    obs = np.stack([e.reset(seed=seed + k)[0] for k, e in enumerate(gym_envs)])
    obs_dtype = jnp.zeros(()).dtype
    obs = obs.reshape(num_seeds, episodes, -1)
    returns = np.zeros((num_seeds, episodes))
    lengths = np.zeros((num_seeds, episodes), np.int64)
    alive = np.ones((num_seeds, episodes), bool)
    while alive.any():
        actions = np.asarray(act(policy.state, jnp.asarray(obs, obs_dtype)), np.float64)
        for k, e in enumerate(gym_envs):
            i, j = divmod(k, episodes)
            if not alive[i, j]:
                continue
            o, r, terminated, truncated, _ = e.step(actions[i, j])
            obs[i, j] = o
            returns[i, j] += r
            lengths[i, j] += 1
            alive[i, j] = not (terminated or truncated)
    for e in gym_envs:
        e.close()
    return returns, lengths


def eval_record(
    env_id: str,
    backend: str,
    seeds,
    returns: np.ndarray,
    lengths: np.ndarray,
    max_steps: int | None = None,
    step: int | None = None,
    env_options: dict | None = None,
) -> dict:
    """The one schema of every evaluation file (``final_eval.json`` of a run,
    ``final_eval_gymnasium.json`` of a sweep arm, ``evaluate --output``).

    Args:
        seeds: the seed numbers of the rows; returns, lengths: ``[S, N]``.

    Returns:
        ``{"env_id", "backend", "env_options", "checkpoint_step", "max_steps", "episodes",
        "num_seeds", "seeds": [{"seed", "returns", "lengths", "mean"}], "mean", "ci95",
        "ci_over", "ci_method"}``: the mean return with the Student-t 95% CI over the
        per-seed means (over the episodes when there is one seed; ``[None, None]`` for
        one episode of one seed).
    """
    from active_rlhf_jax.analysis.stats import compute_mean_ci

    seeds = [int(s) for s in seeds]
    per_seed = [
        {
            "seed": s,
            "returns": [float(r) for r in returns[i]],
            "lengths": [int(n) for n in lengths[i]],
            "mean": float(np.mean(returns[i])),
        }
        for i, s in enumerate(seeds)
    ]
    over = "seeds" if len(seeds) >= 2 else "episodes"
    sample = returns.mean(axis=1) if over == "seeds" else returns[0]
    mean, lo, hi, _ = compute_mean_ci(np.asarray(sample, np.float64))
    finite = np.isfinite(lo) and np.isfinite(hi)
    return {
        "env_id": env_id,
        "backend": backend,
        "env_options": dict(env_options or {}),
        "checkpoint_step": step,
        "max_steps": max_steps,
        "episodes": int(returns.shape[1]),
        "num_seeds": len(seeds),
        "seeds": per_seed,
        "mean": float(mean),
        "ci95": [float(lo), float(hi)] if finite else [None, None],
        "ci_over": over,
        "ci_method": "student-t 95% CI of the mean (per-seed means when >= 2 seeds)",
    }


def evaluate(
    run_dir,
    episodes: int = 10,
    backend: str = "ours",
    step: int | None = None,
    max_steps: int | None = None,
    seed: int = 0,
) -> dict:
    """Load the run's policy (final or ``step``) and evaluate it -> :func:`eval_record`."""
    if backend not in BACKENDS:
        raise ConfigError("backend", f"must be one of {list(BACKENDS)}, got {backend!r}")
    if episodes <= 0:
        raise ConfigError("episodes", f"must be positive, got {episodes}")
    policy = _load_policy(run_dir, step)
    if backend == "gymnasium":
        # No such env: one line, before any work. Silent: its note would describe this
        # probe's options, not the run's (the evaluation's own env prints the run's).
        make_gym_env(policy.env_id, policy.env_options, None, verbose=False).close()
        returns, lengths = evaluate_gymnasium(policy, episodes, max_steps, seed)
    else:
        returns, lengths = evaluate_ours(policy, episodes, backend, max_steps, seed)
    record = eval_record(policy.env_id, backend, policy.seeds, returns, lengths, max_steps,
                         policy.step, policy.env_options)
    if backend == "gymnasium":
        passed, diffs = gym_task_options(policy.env_id, policy.env_options)
        record["gymnasium_options"] = passed
        record["differences_from_ours"] = diffs
    return record


def _load_policy(run_dir, step):
    """``policy_io.load_policy`` with one-line errors naming the run directory.

    FileNotFoundError (no such checkpoint; it lists the saved steps) passes through; any
    other failure (a deleted or damaged file) becomes a ConfigError naming ``run_dir``.
    """
    from active_rlhf_jax.policy_io import load_policy

    if not pathlib.Path(run_dir).is_dir():
        raise ConfigError(str(run_dir), "no such run directory")
    try:
        return load_policy(run_dir, step)
    except FileNotFoundError:
        raise
    except Exception as e:  # orbax/json raise many types for a damaged checkpoint
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise ConfigError(str(run_dir), "its saved policy cannot be loaded "
                          f"({type(e).__name__}: {first})") from None


def ensure_gl_backend() -> str:
    """Pick MuJoCo's offscreen GL backend: the user's ``MUJOCO_GL`` if set, else EGL.

    EGL renders headless on NVIDIA GPUs and, through Mesa's software driver, on CPUs.
    Gymnasium's renderer reads the variable when it builds its context, so setting it
    here (before the first render) is enough even if MuJoCo is already imported.
    """
    if not os.environ.get("MUJOCO_GL"):
        os.environ["MUJOCO_GL"] = "egl"
    if os.environ["MUJOCO_GL"] == "egl":
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    return os.environ["MUJOCO_GL"]


#: Highest frame rate of a video: faster simulations keep every k-th step's frame, so the
#: clip still plays in real time (Hopper's 125 steps/s become 25 frames/s).
MAX_VIDEO_FPS = 30


def video_stride(sim_fps: float, max_fps: float = MAX_VIDEO_FPS) -> int:
    """Env steps per video frame: the smallest k with ``sim_fps / k <= max_fps``."""
    return max(1, int(np.ceil(sim_fps / max_fps - 1e-9)))


def track_camera(env) -> bool:
    """Render through the model's ``track`` camera (``mode="trackcom"``) when it has one.

    Gymnasium 1.4 renders HalfCheetah and Hopper through a free camera that does not
    move, so a running cheetah leaves the frame after ~10 s; the XMLs' own ``track``
    camera follows the centre of mass. Returns whether one was set.
    """
    import mujoco

    base = env.unwrapped
    cam = mujoco.mj_name2id(base.model, mujoco.mjtObj.mjOBJ_CAMERA, "track")
    renderer = getattr(base, "mujoco_renderer", None)
    if cam < 0 or renderer is None:
        return False
    renderer.camera_id = cam  # a model camera: rendered as FIXED, i.e. with its own mode
    return True


def render_video(
    run_dir,
    path,
    step: int | None = None,
    seed_index: int = 0,
    max_steps: int | None = None,
    width: int = 320,
    height: int = 240,
    seed: int = 0,
) -> dict:
    """Render one deterministic episode of one seed's policy to an MP4.

    The episode runs in Gymnasium's env (same id) with ``render_mode="rgb_array"``, which
    draws with MuJoCo's offscreen renderer; frames are encoded with imageio-ffmpeg (H.264,
    real time: the env's ``render_fps`` divided by :func:`video_stride`). One frame for the
    initial state and one after every ``stride``-th step and the last, so a ``T``-step
    episode at stride 1 gives ``T + 1`` frames. The camera follows the robot where the
    model has a tracking camera (:func:`track_camera`).

    Returns:
        ``{"video": path, "frames", "fps", "return", "steps", "seed", "gl_backend"}``.
    """
    import imageio.v2 as imageio
    import jax
    import jax.numpy as jnp

    gl = ensure_gl_backend()
    policy = _load_policy(run_dir, step)
    if not 0 <= seed_index < len(policy.seeds):
        raise ConfigError("video_seed_index",
                          f"{seed_index} out of range for {len(policy.seeds)} seeds")
    ppo_state = _seed_slice(policy.state, seed_index)
    env = make_gym_env(
        policy.env_id,
        policy.env_options,
        max_steps,
        render_mode="rgb_array",
        width=width,
        height=height,
    )
    track_camera(env)
    sim_fps = float(env.metadata.get("render_fps") or 30)  # 1 / dt: one frame per env step
    stride = video_stride(sim_fps)
    fps = sim_fps / stride
    act = jax.jit(lambda s, o: policy.ppo.act(s, o, jax.random.PRNGKey(0), True))
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix or '.mp4'}")
    obs, _ = env.reset(seed=seed)
    total, steps = 0.0, 0
    writer = imageio.get_writer(
        tmp,
        format="FFMPEG",
        mode="I",
        fps=fps,
        codec="libx264",
        quality=7,
        macro_block_size=8,
        pixelformat="yuv420p",
    )
    try:
        frames = 0
        writer.append_data(env.render())
        frames += 1
        done = False
        while not done:
            action = np.asarray(act(ppo_state, jnp.asarray(obs, jnp.zeros(()).dtype)), np.float64)
            obs, r, terminated, truncated, _ = env.step(action)
            total += float(r)
            steps += 1
            done = terminated or truncated
            if steps % stride == 0 or done:
                writer.append_data(env.render())
                frames += 1
    finally:
        writer.close()
        env.close()
    os.replace(tmp, path)
    return {
        "video": str(path),
        "frames": frames,
        "fps": fps,
        "stride": stride,
        "return": total,
        "steps": steps,
        "seed": int(policy.seeds[seed_index]),
        "gl_backend": gl,
    }
