"""Stage 2: syntax tree → model IR (every name resolved, SymPy expressions, located errors)."""

from .checker import BUILTINS as BUILTINS
from .checker import check as check
from .checker import evaluate_defaults as evaluate_defaults
from .functions import FUNCTIONS as FUNCTIONS
from .functions import RANDOM_FUNCTIONS as RANDOM_FUNCTIONS
