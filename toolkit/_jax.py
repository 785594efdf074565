"""JAX set-up shared by the modules that use it.

Statistics checked against R run in float64, so x64 is switched on once, here,
before any array is made; the network code states its dtypes explicitly
(float32 parameters, float32 or bfloat16 compute) and is unaffected.
"""

import os

import jax

jax.config.update("jax_enable_x64", True)

_cache = os.environ.get("JAX_COMPILATION_CACHE_DIR")
if _cache:
    jax.config.update("jax_compilation_cache_dir", _cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)

__all__ = ["jax"]
