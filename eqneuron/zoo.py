"""The model zoo: its models' names and descriptions, and named parameter sets from the literature."""

from __future__ import annotations

from ._resources import models_dir
from .lang import description_of

# Izhikevich (2003), Fig. 2: (a, b, c, d).
IZHIKEVICH_PATTERNS = {
    "regular_spiking": dict(a=0.02, b=0.2, c=-65.0, d=8.0),
    "intrinsically_bursting": dict(a=0.02, b=0.2, c=-55.0, d=4.0),
    "chattering": dict(a=0.02, b=0.2, c=-50.0, d=2.0),
    "fast_spiking": dict(a=0.1, b=0.2, c=-65.0, d=2.0),
    "thalamo_cortical": dict(a=0.02, b=0.25, c=-65.0, d=0.05),
    "resonator": dict(a=0.1, b=0.26, c=-65.0, d=2.0),
    "low_threshold_spiking": dict(a=0.02, b=0.25, c=-65.0, d=2.0),
}


def izhikevich_pattern(name: str) -> dict:
    """Parameters of a named Izhikevich firing pattern (pass as `params=` to `compile_model`)."""
    try:
        return dict(IZHIKEVICH_PATTERNS[name])
    except KeyError:
        raise KeyError(f"unknown pattern {name!r}; known: {', '.join(IZHIKEVICH_PATTERNS)}") from None


def zoo() -> dict[str, str]:
    """Zoo model names and their one-line descriptions."""
    out = {}
    for path in sorted(models_dir().glob("*.eq")):
        description = description_of(path.read_text())
        out[path.stem] = description.splitlines()[0] if description else ""
    return out
