"""Stage 4: model IR and its analysis → JAX callables (vector field, condition, reset, jumps)."""

from .closed_form import ClosedFormFunctions as ClosedFormFunctions
from .closed_form import generate_closed_form as generate_closed_form
from .functions import GeneratedFunctions as GeneratedFunctions
from .functions import generate as generate
from .functions import lambdify as lambdify
from .functions import sample_weights as sample_weights
from .params import parameter_values as parameter_values
