"""Every code example of the README and the documentation site runs as written.

Each page's ```python and ```console blocks run in order in a fresh float32
interpreter (tests/docs_runner.py); the console commands must print what the
page shows, and each page's results are checked here against what its text
claims, with independent references where the page makes a numerical claim.
"""

import numpy as np
import pytest

from .docs_runner import ROOT, Page, PageRuns, blocks, check_commands

DOCS = ROOT / "docs"

README_SUMMARY = """
first = np.asarray(out.first_spike_times())
facts = {
    "first_shape": list(first.shape),
    "output_spikes": int(np.isfinite(first[-3:]).sum()),
    "output_first_spikes": np.asarray(out.first_spikes[-1]).tolist(),
    "grads": gradient_facts(grads),
    "grad_shapes": [list(np.shape(x)) for x in jax.tree_util.tree_leaves(grads)],
}
"""

GETTING_STARTED_SUMMARY = """
def finite_difference(eps=0.05):
    ic = pop.params["ic"]
    up = pop.replace(params={"ic": ic.at[0].add(eps)})
    down = pop.replace(params={"ic": ic.at[0].add(-eps)})
    return float((first_spike_time(up) - first_spike_time(down)) / (2 * eps))

facts = {
    "summary": str(model),
    "counts": np.asarray(counts).tolist(),
    "first": np.asarray(first).tolist(),
    "v_shape": list(np.shape(v)),
    "v_max": float(np.nanmax(np.asarray(v))),
    "grad_ic": np.asarray(grads.params["ic"]).tolist(),
    "finite_difference": finite_difference(),
    "grads": gradient_facts(grads),
}
"""

TUTORIAL_SUMMARY = """
first_pop = np.asarray(out.first_spike_times())
facts = {
    "n_spikes": int(np.sum(out.n_spikes)),
    "overflow": bool(np.any(out.overflow)),
    "first_pop_shape": list(first_pop.shape),
    "v_shape": list(np.shape(v)),
    "v_finite": bool(np.isfinite(np.asarray(v)).all()),
    "w_shape": list(np.shape(grads.weights["w"])),
    "ic_shape": list(np.shape(grads.params["ic"])),
    "ic_nonzero": int(np.count_nonzero(np.asarray(grads.params["ic"]))),
    "grads": gradient_facts(grads),
    "batch_shape": list(np.shape(first)),
    "readout_spikes": int(np.isfinite(np.asarray(first)[:, -3:]).sum()),
    "graph_names": list(graph_out.names),
    "graph_inh_spikes": int(np.sum(np.asarray(inh_ids) >= 0)),
    "graph_exc_spikes": int(np.sum(np.asarray(graph_out.spikes_of("exc")[1]) >= 0)),
    "graph_ok": [str(r) == str(eqn.RESULTS.ok) for r in graph_out.results],
}
"""

CLI_SUMMARY = """
facts = {
    "arrays": sorted(data.files),
    "spike_times": np.asarray(data["spike_times"]).tolist(),
    "spike_neurons": np.asarray(data["spike_neurons"]).tolist(),
    "first_neuron": np.asarray(first_neuron).tolist(),
    "v_shape": list(v.shape),
    "save_at": [float(data["save_at"][0]), float(data["save_at"][-1]), len(data["save_at"])],
}
"""

ZOO_INDEX_SUMMARY = """
facts = {"params": {k: float(model.params[k]) for k in "abcd"}}
"""

ZOO_PAGE_SUMMARY = """
import os
facts = {"pictures": {name: os.path.getsize(name) for name in os.listdir(".") if name.endswith(".png")}}
"""

TRAINING_SUMMARY = """
facts = {"epochs": list(result["history"]["epoch"]), "task": config.task, "model": config.model,
         "test_acc": float(result["test_acc"])}
"""

PORTING_SUMMARY = """
facts = {
    "ours": [np.asarray(x).tolist() for x in ours],
    "reference": [np.asarray(x).tolist() for x in reference],
}
"""

ZOO_PAGES = sorted((DOCS / "zoo").glob("*.md"))
MODEL_PAGES = [Page(path, ZOO_PAGE_SUMMARY) for path in ZOO_PAGES if path.name != "index.md"]
# Pages that share an interpreter run one after the other in it; two interpreters run at once.
GROUPS = [
    [Page(ROOT / "README.md", README_SUMMARY), Page(DOCS / "index.md", GETTING_STARTED_SUMMARY)],
    [Page(DOCS / "tutorial.md", TUTORIAL_SUMMARY)],
    [Page(DOCS / "training.md", TRAINING_SUMMARY)],
    [Page(DOCS / "cli.md", CLI_SUMMARY), Page(DOCS / "zoo" / "index.md", ZOO_INDEX_SUMMARY)]
    + MODEL_PAGES[::2],
    MODEL_PAGES[1::2],
    [Page(DOCS / "porting.md", PORTING_SUMMARY)],  # switches its interpreter to float64
]
RUN = {page.name: page for group in GROUPS for page in group}
# Their code blocks are all ```eq models (tests/test_docs.py compiles them) or output.
NOTHING_TO_RUN = {
    "docs/language.md",
    "docs/engine.md",
    "docs/api.md",
    "docs/design.md",
    "docs/performance.md",
}
LANGUAGES = {"eq", "python", "console", "bash", "text", ""}  # text and untagged: output, not code


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    started = PageRuns(GROUPS, tmp_path_factory.mktemp("pages"))
    yield started
    started.close()


def _result(runs, name: str) -> dict:
    result = runs.result(name)
    check_commands(result, RUN[name].path)
    return result["facts"]


def test_every_page_with_examples_runs_them():
    pages = {p.relative_to(ROOT).as_posix() for p in DOCS.rglob("*.md")}
    assert pages == (set(RUN) - {"README.md"}) | NOTHING_TO_RUN
    for name in NOTHING_TO_RUN:
        languages = {b.language for b in blocks(ROOT / name)}
        assert languages <= {"eq", "text", ""}, (name, languages)


@pytest.mark.parametrize("name", sorted(RUN))
def test_blocks_are_of_known_kinds(name):
    for block in blocks(RUN[name].path):
        assert block.language in LANGUAGES, block.label
        if block.language == "bash":  # README's install commands: .ci/run runs exactly those
            assert block.source.strip() in (ROOT / ".ci" / "run").read_text(), block.label


def test_readme_python_example_runs_and_its_gradients_are_finite(runs):
    facts = _result(runs, "README.md")
    assert facts["first_shape"] == [33]  # "(33,), inf where silent"
    assert facts["output_spikes"] >= 1, facts["output_first_spikes"]
    assert facts["grads"]["dtypes"] == ["float32"]
    assert facts["grads"]["finite"]
    assert facts["grads"]["nonzero"] > 0, "the loss does not depend on the network"
    assert [5 + 30, 30] in facts["grad_shapes"] and [30 + 3, 3] in facts["grad_shapes"]


def test_getting_started_claims_hold(runs):
    facts = _result(runs, "docs/index.md")
    assert "integrator" in facts["summary"] and "c = -65" in facts["summary"]
    counts, first = facts["counts"], facts["first"]
    assert 0 < counts[0] < counts[1] < counts[2]  # "more current, more spikes"
    assert first[0] > first[1] > first[2]  # "more current, an earlier first spike"
    assert facts["v_shape"] == [401, 3]
    assert facts["v_max"] <= 30.0 + 1e-3  # v_th of izhikevich.eq: saved states are below threshold
    grad = facts["grad_ic"]
    assert grad[0] < 0 and grad[1] == 0 and grad[2] == 0  # "nonzero only for neuron 0"
    assert grad[0] == pytest.approx(facts["finite_difference"], rel=0.05)


def test_tutorial_python_examples_run_in_order(runs):
    facts = _result(runs, "docs/tutorial.md")
    assert facts["n_spikes"] > 0 and not facts["overflow"]
    assert facts["first_pop_shape"] == [10]
    assert facts["v_shape"] == [201, 10] and facts["v_finite"]
    assert facts["w_shape"] == [30, 10] and facts["ic_shape"] == [10]
    assert facts["grads"]["dtypes"] == ["float32"]
    assert facts["grads"]["finite"]
    assert facts["ic_nonzero"] > 0
    assert facts["batch_shape"] == [8, 33]
    assert facts["readout_spikes"] > 0
    assert facts["graph_names"] == ["exc", "inh"] and facts["graph_ok"] == [True, True]
    assert facts["graph_exc_spikes"] > 0 and facts["graph_inh_spikes"] > 0


def test_cli_page_commands_and_npz_example(runs):
    facts = _result(runs, "docs/cli.md")
    assert facts["arrays"] == sorted(["spike_times", "spike_neurons", "save_at", "v", "u", "i"])
    times, neurons = np.array(facts["spike_times"]), np.array(facts["spike_neurons"])
    assert len(times) > 0 and np.all(np.diff(times) >= 0)  # "ascending"
    assert facts["first_neuron"] == times[neurons == 0].tolist()
    assert facts["v_shape"] == [1001, 3]
    assert facts["save_at"] == [0.0, 200.0, 1001]


def test_zoo_index_examples(runs):
    facts = _result(runs, "docs/zoo/index.md")
    assert facts["params"] == {"a": 0.02, "b": 0.2, "c": -50.0, "d": 2.0}  # Izhikevich 2003, Fig. 2


@pytest.mark.parametrize("path", [p for p in ZOO_PAGES if p.name != "index.md"], ids=lambda p: p.stem)
def test_zoo_page_command_draws_the_picture(runs, path):
    facts = _result(runs, path.relative_to(ROOT).as_posix())
    assert facts["pictures"].get(f"zoo-{path.stem}.png", 0) > 10_000


def test_training_tutorial_trains_evaluates_and_resumes(runs):
    facts = _result(runs, "docs/training.md")
    assert facts["epochs"] == [1, 2]  # "result["history"]["epoch"]  # [1, 2]"
    assert (facts["task"], facts["model"]) == ("yinyang", "lif")
    assert 0.0 <= facts["test_acc"] <= 1.0


def test_porting_tutorial_matches_its_reference(runs):
    facts = _result(runs, "docs/porting.md")
    for ours, reference in zip(facts["ours"], facts["reference"]):
        assert len(ours) == len(reference) > 3  # "the same number of spikes"
        assert np.max(np.abs(np.subtract(ours, reference))) < 1e-3  # "far below a microsecond"
