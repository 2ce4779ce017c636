"""eqneuron: a declarative neuron compiler for event-based spiking networks.

Write a neuron model as equations in a `.eq` file; `compile_model` checks it
and generates JAX functions that one Diffrax-based event engine simulates in
continuous time and differentiates exactly, through spike times.
"""

from . import xla_defaults

xla_defaults.apply_or_defer()  # before JAX's first computation (see the module)

from . import connect as connect
from .engine import RESULTS as RESULTS
from .engine import SimulationResult as SimulationResult
from .engine import simulate as simulate
from .errors import EqError as EqError
from .errors import EqWarning as EqWarning
from .model import CompiledModel as CompiledModel
from .model import compile_model as compile_model
from .network import Network as Network
from .network import Population as Population
from .network import Projection as Projection
from .network import Spikes as Spikes
from .train import datasets as datasets
from .train import losses as losses
from .zoo import izhikevich_pattern as izhikevich_pattern
from .zoo import zoo as zoo

__version__ = "0.2.0"

__all__ = [
    "CompiledModel",
    "EqError",
    "EqWarning",
    "Network",
    "Population",
    "Projection",
    "RESULTS",
    "SimulationResult",
    "Spikes",
    "compile_model",
    "connect",
    "datasets",
    "izhikevich_pattern",
    "losses",
    "simulate",
    "zoo",
]
