"""The model zoo: its models' names and descriptions, and named parameter sets from the literature."""

from __future__ import annotations

from ._resources import models_dir
from .lang import description_of

# Izhikevich (2003), Fig. 2: (a, b, c, d).
IZHIKEVICH_PATTERNS: dict[str, dict[str, float]] = {
    "regular_spiking": dict(a=0.02, b=0.2, c=-65.0, d=8.0),
    "intrinsically_bursting": dict(a=0.02, b=0.2, c=-55.0, d=4.0),
    "chattering": dict(a=0.02, b=0.2, c=-50.0, d=2.0),
    "fast_spiking": dict(a=0.1, b=0.2, c=-65.0, d=2.0),
    "thalamo_cortical": dict(a=0.02, b=0.25, c=-65.0, d=0.05),
    "resonator": dict(a=0.1, b=0.26, c=-65.0, d=2.0),
    "low_threshold_spiking": dict(a=0.02, b=0.25, c=-65.0, d=2.0),
}
# the paper's abbreviations
IZHIKEVICH_ABBREVIATIONS = {
    "RS": "regular_spiking",
    "IB": "intrinsically_bursting",
    "CH": "chattering",
    "FS": "fast_spiking",
    "TC": "thalamo_cortical",
    "RZ": "resonator",
    "LTS": "low_threshold_spiking",
}


def izhikevich_pattern(name: str) -> dict[str, float]:
    """Parameters `a, b, c, d` of a named Izhikevich (2003) firing pattern, by name or abbreviation
    (`"chattering"` or `"CH"`); pass them as `params=` to `compile_model("izhikevich", ...)`."""
    try:
        return dict(IZHIKEVICH_PATTERNS[IZHIKEVICH_ABBREVIATIONS.get(name, name)])
    except KeyError:
        known = ", ".join(f"{full} ({short})" for short, full in IZHIKEVICH_ABBREVIATIONS.items())
        raise KeyError(f"unknown pattern {name!r}; known: {known}") from None


def zoo() -> dict[str, str]:
    """Zoo model names and their one-line descriptions."""
    out = {}
    for path in sorted(models_dir().glob("*.eq")):
        description = description_of(path.read_text())
        out[path.stem] = description.splitlines()[0] if description else ""
    return out
