import gc
import os
import tempfile

import jax
import pytest

# the tests neither read nor fill the user's caches (closed forms, JAX's compilation cache, whose
# entries from other builds must not be loaded): one fresh directory per test session, set before
# pytest-xdist starts its workers, which inherit it
os.environ.setdefault("EQNEURON_CACHE_DIR", tempfile.mkdtemp(prefix="eqneuron-tests-"))
# JAX's persistent compilation cache stays off in the suite (the CLI would turn it on in a worker),
# so that every test compiles what it runs; test_compilation_cache turns it on itself
os.environ.setdefault("EQNEURON_JAX_CACHE", "off")


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """After each test module, drop JAX's compiled programs.  A pytest-xdist worker lives through
    hundreds of tests; every XLA CPU executable it keeps holds memory mappings, and at the kernel's
    `vm.max_map_count` (65,530) the next compilation's mmap fails and the worker segfaults inside
    `backend_compile_and_load` (measured: 64,188 mappings a few seconds before such a crash)."""
    yield
    jax.clear_caches()
    gc.collect()


# accuracy is asserted in float64; the float32 path has its own subprocess test
jax.config.update("jax_enable_x64", True)
