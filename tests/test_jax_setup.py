"""JAX set-up: float64 on, and the persistent compilation cache where the user expects it."""

from __future__ import annotations

import os
import subprocess
import sys


def _cache_dir_in_child(**env: str) -> str:
    ours = ("JAX_COMPILATION_CACHE_DIR", "SIGKIT_JAX_CACHE", "XDG_CACHE_HOME")
    child_env = {k: v for k, v in os.environ.items() if k not in ours}
    child_env.update(env)
    code = (
        "import toolkit._jax as j; c = j.jax.config;"
        "assert c.jax_enable_x64; print(c.jax_compilation_cache_dir)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=child_env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_compilation_cache_defaults_to_the_user_cache_and_can_be_moved_or_turned_off(tmp_path):
    assert _cache_dir_in_child(XDG_CACHE_HOME=str(tmp_path)) == str(tmp_path / "sigkit" / "jax")
    chosen = str(tmp_path / "elsewhere")
    assert _cache_dir_in_child(JAX_COMPILATION_CACHE_DIR=chosen) == chosen
    assert _cache_dir_in_child(SIGKIT_JAX_CACHE="0") == "None"
