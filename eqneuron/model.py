"""`compile_model`: .eq source -> a checked, jittable `CompiledModel` (an Equinox module)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import equinox as eqx
import numpy as np
import sympy as sp
from jaxtyping import Array, ArrayLike, Bool, DTypeLike, Float, PRNGKeyArray

from .analysis import Analysis, ClosedForm, analyse
from .check import check
from .codegen import ClosedFormFunctions, GeneratedFunctions, generate, generate_closed_form, parameter_values
from .codegen.params import ParameterValues
from .ir import ModelIR
from .lang import compose, parse, read_source
from .lang.syntax import ModelSyntax
from .network import Population, PortChannels, WaveformSamples, WeightValues


class Compiled:
    """What compilation produced: the IR, its analysis and the generated JAX functions.

    A static (hashed by identity) part of `CompiledModel`; equal sources share
    one instance through the in-memory cache, so `jit` does not retrace.
    """

    def __init__(
        self, ir: ModelIR, analysis: Analysis, functions: GeneratedFunctions, closed_form: ClosedFormFunctions | None
    ) -> None:
        self.ir = ir
        self.analysis = analysis
        self.functions = functions
        self.closed_form = closed_form


class CompiledModel(eqx.Module):
    """A checked neuron model with its generated JAX functions and parameter values."""

    compiled: Compiled = eqx.field(static=True)
    params: dict[str, float | Float[Array, " neurons"]]

    @property
    def ir(self) -> ModelIR:
        return self.compiled.ir

    @property
    def fn(self) -> GeneratedFunctions:
        return self.compiled.functions

    @property
    def name(self) -> str:
        return self.ir.name

    @property
    def states(self) -> tuple[str, ...]:
        return self.ir.states

    @property
    def weight_names(self) -> tuple[str, ...]:
        return tuple(self.ir.weights)

    @property
    def integrator(self) -> str:
        """The integrator `simulate(method="auto")` uses, and why."""
        return self.compiled.analysis.integrator.description

    def population(
        self,
        n_neurons: int,
        in_size: int = 0,
        key: PRNGKeyArray | None = None,
        recurrent: bool = False,
        wmask: Bool[ArrayLike, "rows neurons"] | None = None,
        params: ParameterValues | None = None,
        weights: WeightValues | None = None,
        dtype: DTypeLike | None = None,
        ports: PortChannels | None = None,
        waveforms: WaveformSamples | None = None,
    ) -> Population:
        """A population of `n_neurons` of this model receiving `in_size` input channels.

        `ports` assigns the input channels of a model with named input ports
        (`on_input NAME:`) to them: `{"exc": 4, "inh": 1}` (consecutive channels,
        in this order) or `{"exc": [0, 1, 2, 3], "inh": [4]}` (channel ids).

        `waveforms` gives the samples of every input of the model (`inputs:`):
        `{"I_ext": (times, values)}`, times in ms (strictly increasing, at least
        two), values `(T,)` for all neurons or `(T, N)` for one column per neuron;
        interpolated as the model declares, holding the end values outside the samples.
        """
        return Population.create(
            self, n_neurons, in_size, key, recurrent, wmask, params, weights, dtype, ports, waveforms
        )

    def __repr__(self) -> str:
        return describe(self)


def describe(model: CompiledModel) -> str:
    ir = model.ir

    def fmt_param(name: str) -> str:
        p = ir.parameters[name]
        value = model.params[name]
        text = f"{value:g}" if np.ndim(value) == 0 else f"array{tuple(np.shape(value))}"
        flags = [f for f, on in (("per_neuron", p.per_neuron), ("trainable", p.trainable)) if on]
        return f"{name} = {text}" + (f" ({', '.join(flags)})" if flags else "")

    lines = [f"neuron {ir.name}" + (f" — {ir.description.splitlines()[0]}" if ir.description else "")]
    rows = [
        *([("extends", " → ".join(base.filename for base in ir.source.bases))] if ir.source.bases else []),
        ("states", ", ".join(f"{n} = {sp.sstr(ir.initial[n], full_prec=False)}" for n in ir.states)),
        ("parameters", ", ".join(fmt_param(n) for n in ir.parameters) or "none"),
        *([("inputs", ", ".join(f"{n} ({i.interpolation})" for n, i in ir.inputs.items()))] if ir.inputs else []),
        *([("units", ", ".join(f"{n}: {unit}" for n, unit in ir.units.items()))] if ir.units else []),
        ("equations", "\n".join(ir.equation_text)),
        ("threshold", ir.threshold_text),
        ("reset", "; ".join(ir.reset.text) or "none"),
        ("weights", ", ".join(f"{n} = {sp.sstr(e)}" for n, e in ir.weights.items()) or "none"),
        ("on_spike", "; ".join(ir.on_spike.text) or "none"),
    ]
    if ir.ports:
        rows += [(f"on_input {name}", "; ".join(jump.text) or "none") for name, jump in ir.ports.items()]
    else:
        rows.append(("on_input", "; ".join(ir.on_input.text) or "none"))
    if ir.refractory is not None:
        frozen = ", ".join(ir.frozen_when_refractory) or "none"
        rows.append(("refractory", f"{sp.sstr(ir.refractory)} ms (frozen meanwhile: {frozen})"))
    for event in ir.events:
        rows.append((f"event {event.name}", f"{event.condition_text}: " + ("; ".join(event.reset.text) or "no jump")))
    rows.append(("integrator", model.integrator))
    for label, text in rows:
        parts = text.splitlines() or [""]
        lines.append(f"  {label:<11} {parts[0]}")
        lines.extend(f"  {'':<11} {part}" for part in parts[1:])
    return "\n".join(lines)


_CACHE: dict[str, Compiled] = {}


def _compile(syntax: ModelSyntax) -> Compiled:
    """The pipeline after parse → compose: check → analyse → generate."""
    ir = check(syntax)
    analysis = analyse(ir)
    functions = generate(ir)
    closed_form = None
    if isinstance(analysis.closed_form, ClosedForm):
        closed_form = generate_closed_form(ir, analysis.closed_form)
    return Compiled(ir, analysis, functions, closed_form)


def compile_model(source: str | Path, params: ParameterValues | None = None) -> CompiledModel:
    """Compile a zoo name, a path to a `.eq` file, or `.eq` source text.

    A string is model text if it has a line break or opens with a comment or a
    language keyword (`compile_model("extends lif")`), unless it names an
    existing file; otherwise it is a file path or a zoo name, and one that is
    neither is an `EqError`.

    Compilation is cached by content: compiling the same text twice returns
    models that share their generated functions, so `jit` does not retrace.
    """
    model_source = read_source(source)
    syntax = compose(parse(model_source.text, model_source.filename), model_source.path)
    text = syntax.source.text_with_bases
    key = hashlib.sha256(f"{model_source.filename}\0{text}".encode("utf-8", "surrogatepass")).hexdigest()
    if key not in _CACHE:
        _CACHE[key] = _compile(syntax)
    compiled = _CACHE[key]
    return CompiledModel(compiled, parameter_values(compiled.ir, params))


__all__ = ["CompiledModel", "compile_model"]
