"""`import eqneuron` sets XLA's CPU scheduler to its depth-first order (eqneuron/xla_defaults.py):
only when it can take effect, never over the user's own value, and without changing results.
Each case runs in a fresh process (XLA reads its flags once per process)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler=false"
ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    if "jax-first" in sys.argv:
        import jax.numpy as jnp
        jnp.zeros(3).block_until_ready()  # JAX's backend starts (and reads XLA_FLAGS) before eqneuron
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import eqneuron as eqn
    warned = [str(w.message) for w in caught if w.category.__name__ == "EqWarning"]
    spikes = None
    if "simulate" in sys.argv:
        from tests.test_event_windows import cuba_net, spikes_of
        net, _, _ = cuba_net(30, seed=0)
        spikes = spikes_of(eqn.simulate(net, None, t1=40.0, max_spikes=512))
    print(json.dumps({"flags": os.environ.get("XLA_FLAGS", ""), "spikes": spikes, "warned": warned}))
    """
)


def run(*args, **env):
    base = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "EQNEURON_XLA_DEFAULTS", "JAX_DISABLE_MOST_OPTIMIZATIONS")}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, *args], env={**base, "JAX_ENABLE_X64": "1", "JAX_PLATFORMS": "cpu", **env},
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_scheduler_flag_is_set_on_import_and_results_do_not_change():
    from tests.test_event_windows import cuba_net, reference

    ours = run("simulate")
    xlas = run("simulate", EQNEURON_XLA_DEFAULTS="0")
    assert FLAG in ours["flags"].split()
    assert "concurrency_optimized_scheduler" not in xlas["flags"]
    # the same spikes, bit for bit, under either order of XLA's operations, and the exact reference's
    assert len(ours["spikes"]) >= 40 and ours["spikes"] == xlas["spikes"]
    _, v0, pairs = cuba_net(30, seed=0)
    ref = reference(v0, pairs["exc"], pairs["inh"], 4.0, -6.0, 40.0)
    assert [j for _, j in ours["spikes"]] == [j for _, j in ref]
    np.testing.assert_allclose([t for t, _ in ours["spikes"]], [t for t, _ in ref], atol=1e-8)


def test_the_users_own_value_is_kept_and_nothing_is_set_once_jax_has_started():
    own = "--xla_cpu_enable_concurrency_optimized_scheduler=true --xla_force_host_platform_device_count=2"
    ran = run(XLA_FLAGS=own)
    assert ran["flags"] == own and ran["warned"] == []  # nothing to warn of (see the test below)
    assert run("jax-first")["flags"] == ""
    other = "--xla_force_host_platform_device_count=2"
    assert run(XLA_FLAGS=other)["flags"].split() == [other, FLAG]


def test_an_unknown_setting_of_the_switch_is_an_error():
    base = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    done = subprocess.run([sys.executable, "-c", "import eqneuron"], env={**base, "EQNEURON_XLA_DEFAULTS": "maybe"},
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode != 0 and "EQNEURON_XLA_DEFAULTS must be 0 or 1" in done.stderr
    # also when XLA_FLAGS already sets the flag (the switch then changes nothing, but is not ignored)
    done = subprocess.run([sys.executable, "-c", "import eqneuron"],
                          env={**base, "EQNEURON_XLA_DEFAULTS": "maybe", "XLA_FLAGS": FLAG.replace("false", "true")},
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode != 0 and "EQNEURON_XLA_DEFAULTS must be 0 or 1" in done.stderr


def test_the_command_line_reports_a_bad_setting_without_a_traceback():
    base = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    done = subprocess.run([sys.executable, "-m", "eqneuron", "check", "lif"], env={**base, "EQNEURON_XLA_DEFAULTS": "yes"},
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip() == ("eqneuron check: error: EQNEURON_XLA_DEFAULTS must be 0 or 1, got 'yes'; "
                                   "hint: unset it, or 0 to leave XLA_FLAGS alone")
    # only 0 and 1: other spellings of "on" are refused too
    done = subprocess.run([sys.executable, "-c", "import eqneuron"], env={**base, "EQNEURON_XLA_DEFAULTS": "ON"},
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode != 0 and "got 'ON'" in done.stderr


def test_xla_at_optimisation_level_zero_is_warned_of():
    """XLA's backend at level 0 miscompiles the root finder's loop (the first spike of a LIF neuron
    under constant drive: 3.897 ms instead of 10 ln 1.5 = 4.0547 ms): `import eqneuron` says so
    (and stays silent otherwise: the test above)."""
    for env in [{"XLA_FLAGS": "--xla_backend_optimization_level=0"}, {"JAX_DISABLE_MOST_OPTIMIZATIONS": "1"}]:
        (warned,) = run(**env)["warned"]
        assert next(iter(env)) in warned and "wrong spike times" in warned
