import os
import tempfile

import jax

# the tests neither read nor fill the user's caches (closed forms, JAX's compilation cache, whose
# entries from other builds must not be loaded): one fresh directory per test session, set before
# pytest-xdist starts its workers, which inherit it
os.environ.setdefault("EQNEURON_CACHE_DIR", tempfile.mkdtemp(prefix="eqneuron-tests-"))
# JAX's persistent compilation cache stays off in the suite (the CLI would turn it on in a worker):
# writing and reading its executables crashed pytest-xdist workers three times in JAX's
# `put_executable_and_time` / `get_executable_and_time`; test_compilation_cache turns it on itself
os.environ.setdefault("EQNEURON_JAX_CACHE", "off")

# accuracy is asserted in float64; the float32 path has its own subprocess test
jax.config.update("jax_enable_x64", True)
