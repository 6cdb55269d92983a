"""Where the CLI's persistent compilation cache lives, and how it is turned off."""

from pathlib import Path

from active_rlhf_jax.compile_cache import cache_dir


def test_cache_dir_follows_jax_then_xdg_then_home(tmp_path):
    assert cache_dir({"JAX_COMPILATION_CACHE_DIR": str(tmp_path / "j")}) == tmp_path / "j"
    assert cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "active-rlhf-jax" / "jax"
    assert cache_dir({}) == Path.home() / ".cache" / "active-rlhf-jax" / "jax"


def test_cache_can_be_turned_off():
    for value in ("1", "true", "YES"):
        assert cache_dir({"ACTIVE_RLHF_NO_COMPILE_CACHE": value,
                          "JAX_COMPILATION_CACHE_DIR": "/x"}) is None
    assert cache_dir({"ACTIVE_RLHF_NO_COMPILE_CACHE": "0", "XDG_CACHE_HOME": "/c"}) == Path(
        "/c/active-rlhf-jax/jax")


def test_only_c_mujoco_through_pure_callback_is_said_to_miss_the_cache(tmp_path, monkeypatch):
    """JAX never caches a program with a pure_callback; the custom-call path is kept."""
    import jax

    from active_rlhf_jax.compile_cache import uncacheable_reason
    from active_rlhf_jax.envs.host_call import jax_caches_callbacks

    before = jax.config.jax_compilation_cache_dir
    try:
        jax.config.update("jax_compilation_cache_dir", str(tmp_path))
        monkeypatch.setenv("ACTIVE_RLHF_HOST_CALL", "callback")
        reason = uncacheable_reason("mujoco")
        if jax_caches_callbacks():  # jax >= 0.11 keeps pure_callback programs too
            assert reason is None
        else:
            assert reason is not None and "pure_callback" in reason
        assert uncacheable_reason("mjx") is None
        assert uncacheable_reason("jax") is None
        monkeypatch.setenv("ACTIVE_RLHF_HOST_CALL", "ffi")
        assert uncacheable_reason("mujoco") is None  # on this CPU: the custom call
        jax.config.update("jax_compilation_cache_dir", None)
        monkeypatch.setenv("ACTIVE_RLHF_HOST_CALL", "callback")
        assert uncacheable_reason("mujoco") is None  # no cache, nothing to say
    finally:
        jax.config.update("jax_compilation_cache_dir", before)
