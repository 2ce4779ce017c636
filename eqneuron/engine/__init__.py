"""Stage 5: the event engine — simulate populations and networks, differentiable through spike times.

`simulate` (simulate.py; the run planned in run.py) builds one `PopulationLoop` (loop.py) per population,
with a clock (clocks.py: own clocks / one shared clock) and an integrator
(integrator.py: closed form, Runge–Kutta with a step-size controller), and
collects a `SimulationResult` (result.py) with a `RESULTS` code per population.
"""

from .config import SolverConfig as SolverConfig
from .result import RESULTS as RESULTS
from .result import SimulationResult as SimulationResult
from .simulate import simulate as simulate
