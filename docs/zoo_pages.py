"""Write the zoo's pages and pictures from `models/`.

    python docs/zoo_pages.py            # every page, and every model's picture
    python docs/zoo_pages.py lif qif    # every page, and these models' pictures
    python docs/zoo_pages.py --pages    # every page, no pictures (no simulation)

It writes `docs/zoo/index.md` (the table of models), `docs/zoo/NAME.md` per
model (its description, its equations typeset from the compiled model's SymPy
expressions, its source included from `models/`, its picture) and the zoo
section of the navigation in `mkdocs.yml`; pictures go to
`docs/img/zoo-NAME.png`, drawn by the `eqneuron simulate --plot` command
shown on the page. `tests/test_docs_site.py` checks that the committed pages
and navigation are what this script writes and that every picture exists.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from pathlib import Path

import sympy as sp

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
if __name__ == "__main__" and str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as a script from a checkout

import eqneuron as eqn  # noqa: E402
from eqneuron._resources import models_dir  # noqa: E402
from eqneuron.cli import main  # noqa: E402
from eqneuron.lang import description_of  # noqa: E402

# What each picture shows: the `eqneuron simulate` options and a sentence about it.
PICTURES = {
    "lif": (
        "--neurons 3 --poisson 30 --channels 20 --duration 100",
        "Three neurons driven by Poisson input on 20 channels at 30 Hz: every input spike "
        "kicks the synaptic current `i`, which decays with `tsyn`; `v` integrates it and is "
        "reset by `thresh` at each spike (a dot on the threshold).",
    ),
    "qif": (
        "--neurons 3 --poisson 100 --channels 20 --duration 100",
        "Three neurons driven by Poisson input on 20 channels at 100 Hz. The state is the phase "
        "`phi`; the neuron fires when it reaches 1 (the voltage `v = pi tan(pi (phi - 1/2))` "
        "diverges there) and restarts at 0.",
    ),
    "eif": (
        "--neurons 3 --poisson 40 --channels 20 --duration 100",
        "Three neurons driven by Poisson input on 20 channels at 40 Hz. Above the soft "
        "threshold `vT` the exponential term takes over and `V` runs up to `v_peak`, where "
        "the spike is registered and `V` is reset.",
    ),
    "izhikevich": (
        "--neurons 1 --current 10 --param c=-65 --param d=8 --duration 300",
        "Regular spiking (Izhikevich 2003, Fig. 2: `c = -65`, `d = 8`) under a constant current "
        "of 10: the recovery variable `u` jumps by `d` at every spike, so the inter-spike "
        "intervals grow (adaptation). Every spike reaches `v_th` = 30 mV, where it is reset to `c`.",
    ),
    "egru": (
        "--neurons 3 --poisson 50 --channels 20 --duration 200 --param b_u=0 --param b_z=1",
        "Three cells with the update gate half open (`b_u = 0`) and the modulation drive "
        "`b_z = 1`, driven by Poisson input on 20 channels at 50 Hz: the cell state `c` relaxes "
        "towards `tanh(a_z)`, fires at `thresh` and drops by `thresh`.",
    ),
    "egru_pregated": (
        "--neurons 3 --poisson 50 --channels 20 --duration 200 --param b_u=0 --param b_z=2",
        "Three cells with the update gate half open (`b_u = 0`) and the modulation drive `b_z = 2`, "
        "driven by Poisson input on 20 channels at 50 Hz. The model differs from `egru` in what a "
        "spike does to its targets (scaled by the firing cell's `c`) and in ungated input jumps.",
    ),
    "adex": (
        "--neurons 1 --current 800 --duration 300",
        "The regular-spiking cell of Brette & Gerstner (2005) under a constant current of 800 pA: "
        "the adaptation current `w` jumps by `b` at every spike and the intervals grow. Every spike "
        "is cut at `V_peak` = -40.4 mV and reset to `EL`.",
    ),
    "alif": (
        "--neurons 1 --current 0.05 --duration 300",
        "One neuron under a constant drive of 0.05: each spike raises the threshold "
        "`A = b0 + beta a` through `a`, which decays with `tau_a` = 200 ms, so the spikes thin out. "
        "The dots are at the threshold the neuron crossed (`A` at that time).",
    ),
    "hh": (
        "--neurons 1 --current 1000 --duration 100",
        "One neuron under a constant current of 1 nA fires repetitively. The model has no reset: "
        "a spike is registered when `v` crosses `v_spike` = -40 mV upwards (the dots), and the "
        "detector re-arms once `v` is below it again.",
    ),
    "lif_coba": (
        "--neurons 3 --poisson 60 --channels 20 --duration 200",
        "Three neurons driven by Poisson input on 20 channels at 60 Hz through excitatory and "
        "inhibitory conductances (`ge`, `gi`; the sign of a weight picks the synapse). After a "
        "spike `v` is held at `Vr` for `tau_ref` = 5 ms.",
    ),
    "resonate_fire": (
        "--neurons 1 --current 0.3 --duration 200",
        "One neuron under a constant drive of 0.3: `(x, y)` spirals towards a fixed point beyond "
        "the threshold `y = 1`, fires on the way, is reset to `(0, 0.9)` and spirals out again.",
    ),
    "morris_lecar": (
        "--neurons 3 --poisson 20 --channels 20 --duration 300",
        "Three neurons driven by Poisson input on 20 channels at 20 Hz: a volley of inputs sets "
        "off a calcium spike, smaller ones stay subthreshold. No reset: a spike is registered when "
        "`V` crosses `V_spike` = 0 mV upwards (the dots), and the detector re-arms below it.",
    ),
    "iaf_psc_exp": (
        "--neurons 3 --poisson 50 --channels 20 --duration 100",
        "Three neurons with NEST's default parameters driven by Poisson input on 20 channels at 50 Hz "
        "(weights in pA). After each spike `V_m` is clamped at `V_reset` = -70 mV for `t_ref` = 2 ms "
        "while `I_syn` keeps decaying; between events the propagator is exact.",
    ),
    "dcaap": (
        "--neurons 1 --current 0.2 --duration 150",
        "A threshold-level current step of 0.2 nA into the dendrite (`ic`): `v_d` creeps up to the "
        "dCaAP threshold `V_th_d` = -36 mV, the dCaAP current drives the dendrite for about 20 ms and "
        "the soma fires twice. A stronger step brings an earlier, smaller dCaAP (amplitude `K`) that "
        "leaves the soma silent: `examples/dendritic_xor.py` trains one neuron on XOR with it.",
    ),
    "fitzhugh_nagumo": (
        "--neurons 1 --current 0.5 --duration 200",
        "One neuron under a constant drive of 0.5 oscillates on its limit cycle; a spike is "
        "registered when `v` crosses 1 upwards (no reset).",
    ),
}
DEFAULT_PICTURE = (
    "--neurons 3 --poisson 100 --channels 20 --duration 100",
    "Three neurons driven by Poisson input on 20 channels at 100 Hz.",
)
NAV_BEGIN = "      # zoo pages: written by docs/zoo_pages.py\n"
NAV_END = "      # end of the zoo pages\n"


def names() -> list[str]:
    return sorted(eqn.zoo())


def picture_command(name: str) -> str:
    options, _ = PICTURES.get(name, DEFAULT_PICTURE)
    return f"eqneuron simulate {name} {options} --plot zoo-{name}.png"


def _symbol_latex(symbol: sp.Symbol) -> str:
    """`tau_syn` as τ_syn (SymPy's way); a multi-letter name such as `tmem` upright, not as a product."""
    plain = sp.latex(symbol)
    if len(symbol.name) > 1 and "\\" not in plain and "_" not in plain:
        return rf"\mathrm{{{symbol.name}}}"
    return plain


def _latex(expression: sp.Expr) -> str:
    names = {s: _symbol_latex(s) for s in expression.free_symbols}
    return sp.latex(expression, mul_symbol="dot", symbol_names=names).replace(r"\cdot", r"\,")


def equations_latex(model) -> list[str]:
    """One display equation per differential equation and subexpression (as the compiler holds them)."""
    ir = model.ir
    lines = [
        rf"\frac{{d{_symbol_latex(sp.Symbol(s))}}}{{dt}} &= {_latex(e)}" for s, e in ir.derivatives.items()
    ]
    lines += [rf"{_symbol_latex(sp.Symbol(s))} &= {_latex(e)}" for s, e in ir.subexpressions.items()]
    return lines


def _integrator(model) -> str:
    """`exact` or the Runge–Kutta method, as `repr(model)` names it before its reason."""
    described = model.integrator
    return "exact" if described.startswith("exact") else described.split(" — ")[0].split(", ")[-1]


def page(name: str) -> str:
    """The Markdown of a zoo model's page."""
    model = eqn.compile_model(name)
    source = (models_dir() / f"{name}.eq").read_text()
    title, *rest = description_of(source).splitlines()
    _, caption = PICTURES.get(name, DEFAULT_PICTURE)
    equations = " \\\\\n".join(equations_latex(model))
    jumps = "; ".join(model.ir.on_spike.text) or "nothing"
    reset = "; ".join(model.ir.reset.text) or "no reset (a spike detector)"
    events = "".join(
        f"\nAn internal event `{e.name}` when `{e.condition_text}` starts to hold: `{'; '.join(e.reset.text)}`."
        for e in model.ir.events
    )
    if model.ir.refractory is not None:
        frozen = ", ".join(f"`{n}`" for n in model.ir.frozen_when_refractory) or "no state"
        events += f"\nRefractory for `{sp.sstr(model.ir.refractory)}` ms after a spike: {frozen} frozen, no spike."
    return f"""<!-- Written by docs/zoo_pages.py from models/{name}.eq: edit those, then run it. -->
# {model.name}

{title}

{" ".join(rest)}

## Equations

Between events (as compiled, subexpressions substituted):

$$
\\begin{{aligned}}
{equations}
\\end{{aligned}}
$$

A spike when `{model.ir.threshold_text}` starts to hold; then `{reset}`.
A spike of this neuron arriving at a target: `{jumps}`.{events}
Integrator: {model.integrator}.

## Source

`models/{name}.eq`, compiled by `eqn.compile_model("{name}")`:

```eq
--8<-- "models/{name}.eq"
```

## Picture

```console
$ {picture_command(name)}
```

![{model.name} simulated by eqneuron](../img/zoo-{name}.png)

{caption}
"""


def index() -> str:
    """The Markdown of the zoo's front page."""
    rows, listing = [], []
    width = max(map(len, names()))
    for name in names():
        model = eqn.compile_model(name)
        description = eqn.zoo()[name]
        states = ", ".join(model.states)
        rows.append(f"| [`{name}`]({name}.md) | {description} | `{states}` | {_integrator(model)} |")
        listing.append(f"{name:<{width}}  {description}")
    table = "\n".join(rows)
    zoo_output = "\n".join(listing)
    return f"""<!-- Written by docs/zoo_pages.py from models/: edit those, or the script, then run it. -->
# The model zoo

The zoo's models ship with eqneuron (`models/` in the repository): pass the
name to `eqn.compile_model` or to any command. `eqneuron zoo` lists them;
`eqneuron check NAME` prints what the compiler understood of one. Each file
cites its source. Every zoo model is tested against an independent
reference: its generated functions against a NumPy implementation of the
published equations (`tests/test_zoo_reference.py`), and its simulations
against eventax's hand-written classes where eventax has the model
(`tests/test_vs_eventax.py`) or a fine-step reference integration.

```console
$ eqneuron zoo
{zoo_output}
```

| name | model | states | integrator |
|---|---|---|---|
{table}

Each model's page shows its equations, its source and a picture drawn by
`eqneuron simulate --plot` (the command is on the page).

## Izhikevich firing patterns

`eqn.izhikevich_pattern(name)` gives `(a, b, c, d)` for `regular_spiking`,
`intrinsically_bursting`, `chattering`, `fast_spiking`, `thalamo_cortical`,
`resonator`, `low_threshold_spiking` (Izhikevich 2003, Fig. 2):

```python
import eqneuron as eqn

model = eqn.compile_model("izhikevich", params=eqn.izhikevich_pattern("chattering"))
```
"""


def navigation(config: str) -> str:
    """`mkdocs.yml` with its zoo section listing every model's page."""
    entries = "".join(f"      - {eqn.compile_model(name).name}: zoo/{name}.md\n" for name in names())
    pattern = re.compile(re.escape(NAV_BEGIN) + ".*?" + re.escape(NAV_END), re.S)
    if not pattern.search(config):
        raise SystemExit(
            f"mkdocs.yml has no zoo section between {NAV_BEGIN.strip()!r} and {NAV_END.strip()!r}"
        )
    return pattern.sub(lambda _: NAV_BEGIN + entries + NAV_END, config)


def write_picture(name: str) -> Path:
    path = DOCS / "img" / f"zoo-{name}.png"
    argv = shlex.split(picture_command(name))[1:]
    argv[argv.index("--plot") + 1] = str(path)
    code = main(argv)
    if code != 0:
        raise SystemExit(f"eqneuron {' '.join(argv)} failed with exit code {code}")
    return path


def main_(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="zoo models whose pictures to draw (default: all)")
    parser.add_argument("--pages", action="store_true", help="write the pages only, no pictures")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(names()))
    if unknown:
        parser.error(f"not in the zoo: {', '.join(unknown)}")
    (DOCS / "zoo").mkdir(exist_ok=True)
    (DOCS / "zoo" / "index.md").write_text(index())
    for name in names():
        (DOCS / "zoo" / f"{name}.md").write_text(page(name))
    config = ROOT / "mkdocs.yml"
    config.write_text(navigation(config.read_text()))
    print(f"wrote docs/zoo/index.md, {len(names())} model pages and the zoo section of mkdocs.yml")
    if not args.pages:
        for name in args.names or names():
            print(f"wrote {write_picture(name).relative_to(ROOT)}")


if __name__ == "__main__":
    main_()
