"""The `eqneuron` command line."""

from .main import main as main
