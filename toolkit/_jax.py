"""JAX set-up shared by the modules that use it.

Statistics checked against R run in float64, so x64 is switched on once, here,
before any array is made; the network code states its dtypes explicitly
(float32 parameters, float32 or bfloat16 compute) and is unaffected.

Compiled programs go to JAX's persistent compilation cache, so that a new
process loads them instead of compiling again (the elastic-net path takes
seconds to compile and milliseconds to run): ``$JAX_COMPILATION_CACHE_DIR``
when set, else ``jax/`` in the user cache directory that platformdirs gives
(Linux: ``$XDG_CACHE_HOME/sigkit/jax``, else ``~/.cache/sigkit/jax``);
``SIGKIT_JAX_CACHE=0`` turns it off. Programs that compile in under half a
second are not stored.
"""

import os
from pathlib import Path

import jax
import platformdirs

jax.config.update("jax_enable_x64", True)


def _cache_dir() -> str | None:
    if os.environ.get("SIGKIT_JAX_CACHE", "1") == "0":
        return None
    explicit = os.environ.get("JAX_COMPILATION_CACHE_DIR")
    if explicit:
        return explicit
    return str(Path(platformdirs.user_cache_dir("sigkit")) / "jax")


_cache = _cache_dir()
if _cache:
    jax.config.update("jax_compilation_cache_dir", _cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)

__all__ = ["jax"]
