"""Stage 3: model IR → what the engine needs to know (linearity, closed forms as SymPy data, the integrator)."""

from .linear import LinearSystem as LinearSystem
from .linear import integrator_name as integrator_name
from .linear import linear_system as linear_system
