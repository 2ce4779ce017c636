"""Training: losses, data sets, the training loop and gradient checks."""

from . import datasets as datasets
from . import losses as losses
