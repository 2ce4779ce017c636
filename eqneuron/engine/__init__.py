"""Stage 5: the event engine — simulate populations and networks, differentiable through spike times."""

from .simulate import SimulationResult as SimulationResult
from .simulate import simulate as simulate
