import gc
import os
import shutil
import tempfile

# XLA's CPU compiler emits the fused kernels of the tests' programs with its older elemental emitters
# (they compile ~10-25 % faster: the suite is mostly compilation, and they run the same operations),
# skips its pass that hoists loop-invariant operations out of while loops (a fifth of the
# compilation of a network's nested event loops under reverse mode; the loops compute the same
# values in their bodies instead), generates each program's machine code as one module
# rather than several compiled on parallel threads (the two workers already keep both cores
# busy, and the split cost 12 % more CPU time), and has LLVM leave the kernels' loops rolled
# (its passes nearly tripled a reverse-mode program's code, much of it by unrolling small loops;
# the runs are slower, the values the same: docs/design.md).  The user's defaults are kept
# everywhere else, and `test_xla_defaults` runs them; a value already in XLA_FLAGS is kept
for _flag, _value in (
    ("xla_cpu_use_fusion_emitters", "false"),
    ("xla_disable_hlo_passes", "while-loop-invariant-code-motion"),
    ("xla_cpu_parallel_codegen_split_count", "1"),
    ("xla_backend_extra_options", "xla_cpu_disable_loop_unrolling"),
):
    if _flag not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --{_flag}={_value}".strip()

# Python's full (oldest-generation) garbage collections are rare: each walks every object of a
# worker that has imported JAX, SymPy and the package (~0.5 M, ~0.2 s a walk), and JAX's tracing of a
# program allocates enough to set off several per trace (a graph network's value_and_grad: six,
# 1.2 s of its 5.5 s trace).  The tests' setting only (docs/design.md); each module ends with a
# full collection (below)
gc.set_threshold(700, 10, 1000)

import jax  # noqa: E402
import pytest  # noqa: E402
from jax.experimental.compilation_cache import compilation_cache  # noqa: E402

# the tests neither read nor fill the user's caches (the closed forms SymPy derived, whose entries
# from other builds must not be loaded): one fresh directory per test session, set before
# pytest-xdist starts its workers, which inherit it; the process that made it removes it at the end
_OWN_CACHE = None if "EQNEURON_CACHE_DIR" in os.environ else tempfile.mkdtemp(prefix="eqneuron-tests-")
if _OWN_CACHE is not None:
    os.environ["EQNEURON_CACHE_DIR"] = _OWN_CACHE


def pytest_unconfigure(config):
    if _OWN_CACHE is not None:
        shutil.rmtree(_OWN_CACHE, ignore_errors=True)


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """After each test module, drop JAX's compiled programs.  A pytest-xdist worker lives through
    hundreds of tests; every XLA CPU executable it keeps holds memory mappings, and at the kernel's
    `vm.max_map_count` (65,530) the next compilation's mmap fails and the worker segfaults inside
    `backend_compile_and_load` (measured: 64,188 mappings a few seconds before such a crash)."""
    yield
    jax.clear_caches()
    gc.collect()
    # JAX's persistent compilation cache is on only where the code under test turns it on, as for a
    # user (`train`, the command line: a second run there compiles nothing), and off again after the
    # module: kept on for the worker's later modules, its writes (209 programs, 18.9 s over the
    # suite) cost four times what its reads saved (10 hits, 4.4 s)
    if jax.config.jax_compilation_cache_dir:  # type: ignore[attr-defined]
        jax.config.update("jax_compilation_cache_dir", None)
        compilation_cache.reset_cache()


# accuracy is asserted in float64; the float32 path has its own subprocess test
jax.config.update("jax_enable_x64", True)
