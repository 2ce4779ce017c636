"""JAX's persistent compilation cache, on by default for the command line and training.

A second process that compiles the same programs (the same model, network
shapes and options) reads them from disk instead of compiling them again.
The cache lives in `$EQNEURON_JAX_CACHE` (default: the `jax` folder of
eqneuron's cache directory, see `eqneuron.analysis.cache`); set
`EQNEURON_JAX_CACHE=off` to disable it.  A cache that JAX has already been
configured with (`jax_compilation_cache_dir`) is left as it is.
"""

from __future__ import annotations

import os

import jax

from .analysis.cache import cache_dir


def enable_compilation_cache() -> str | None:
    """Point JAX's persistent compilation cache at eqneuron's cache directory; returns the path."""
    configured = os.environ.get("EQNEURON_JAX_CACHE")
    if configured is not None and configured.lower() in ("", "0", "off", "none"):
        return None
    # config options are attributes JAX adds at run time
    current = jax.config.jax_compilation_cache_dir  # type: ignore[attr-defined]
    if current:
        return current
    path = configured
    if path is None:
        base = cache_dir()
        if base is None:
            return None
        path = str(base / "jax")
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path
