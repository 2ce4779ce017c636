"""Datasets, all offline: Yin-Yang (generated), scikit-learn digits, MNIST IDX files, delayed XOR.

Each returns an `EventDataset`: padded input spike times and channels per
sample (`times = inf` where unused) and integer labels.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from jaxtyping import Float, Int, Real, UInt8


@dataclass(frozen=True)
class EventDataset:
    times: Float[np.ndarray, "samples events"]  # inf-padded
    channels: Int[np.ndarray, "samples events"]
    labels: Int[np.ndarray, " samples"]
    n_channels: int
    n_classes: int
    duration: float  # ms: simulate at least this long
    values: Float[np.ndarray, "samples events"] | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: slice | Int[np.ndarray, " subset"]) -> EventDataset:
        return EventDataset(
            self.times[index], self.channels[index], self.labels[index], self.n_channels,
            self.n_classes, self.duration, None if self.values is None else self.values[index],
        )


# ---- Yin-Yang (Kriener, Göltz & Petrovici 2021) -------------------------------

R_BIG, R_SMALL = 0.5, 0.1


def yinyang_class(
    x: float | Float[np.ndarray, "*points"],
    y: float | Float[np.ndarray, "*points"],
    r_big: float = R_BIG,
    r_small: float = R_SMALL,
) -> Int[np.ndarray, "*points"]:
    """1 = yin, 0 = yang, 2 = the dots, exactly as the reference implementation defines them."""
    d_right = np.sqrt((x - 1.5 * r_big) ** 2 + (y - r_big) ** 2)
    d_left = np.sqrt((x - 0.5 * r_big) ** 2 + (y - r_big) ** 2)
    criterion1 = d_right <= r_small
    criterion2 = (d_left > r_small) & (d_left <= 0.5 * r_big)
    criterion3 = (y > r_big) & (d_right > 0.5 * r_big)
    is_yin = criterion1 | criterion2 | criterion3
    is_circles = (d_right < r_small) | (d_left < r_small)
    return np.where(is_circles, 2, is_yin.astype(int))


def yinyang_points(
    size: int, seed: int, r_big: float = R_BIG, r_small: float = R_SMALL
) -> tuple[Float[np.ndarray, "samples 2"], Int[np.ndarray, " samples"]]:
    """`size` points, classes balanced by rejection sampling (a goal class drawn per sample)."""
    rng = np.random.RandomState(seed)
    points: list[tuple[float, float]] = []
    labels: list[int] = []
    for _ in range(size):
        goal = rng.randint(3)
        while True:
            x, y = rng.rand(2) * 2.0 * r_big
            if np.sqrt((x - r_big) ** 2 + (y - r_big) ** 2) > r_big:
                continue
            c = int(yinyang_class(x, y, r_big, r_small))
            if c == goal:
                break
        points.append((x, y))
        labels.append(goal)
    return np.asarray(points), np.asarray(labels)


def yinyang(size: int = 5000, seed: int = 42, t_early: float = 2.0, t_late: float = 20.0, t_bias: float = 10.0) -> EventDataset:
    """Yin-Yang, latency-encoded: inputs x, y, 1-x, 1-y at t_early + v (t_late - t_early), plus a bias spike.

    The paper's splits use 5000 training and 1000 test samples (different seeds).
    """
    points, labels = yinyang_points(size, seed)
    x, y = points[:, 0], points[:, 1]
    values = np.stack([x, y, 1 - x, 1 - y], axis=1)
    times = t_early + values * (t_late - t_early)
    times = np.concatenate([times, np.full((size, 1), t_bias)], axis=1)
    channels = np.broadcast_to(np.arange(5), times.shape).copy()
    return EventDataset(times, channels, labels, 5, 3, duration=3 * t_late)


# ---- scikit-learn digits: an 8x8 MNIST stand-in -------------------------------


def latency_encode_images(
    images: Real[np.ndarray, "images height width"], t_min: float = 0.0, t_max: float = 20.0, threshold: float = 0.1
) -> tuple[Float[np.ndarray, "images channels"], Int[np.ndarray, "images channels"]]:
    """Brighter pixels spike earlier; pixels below `threshold` (of max) do not spike."""
    flat = images.reshape(len(images), -1).astype(np.float64)
    flat = flat / max(flat.max(), 1e-12)
    times = np.where(flat > threshold, t_min + (1.0 - flat) * (t_max - t_min), np.inf)
    channels = np.broadcast_to(np.arange(flat.shape[1]), flat.shape).copy()
    return times, channels


def digits(split: str = "train", test_fraction: float = 0.2, seed: int = 0, t_max: float = 20.0) -> EventDataset:
    """scikit-learn's 8x8 handwritten digits (1797 images), latency-encoded on 64 channels."""
    from sklearn.datasets import load_digits

    data = load_digits()
    rng = np.random.RandomState(seed)
    order = rng.permutation(len(data.target))
    n_test = int(round(test_fraction * len(order)))
    index = order[n_test:] if split == "train" else order[:n_test]
    times, channels = latency_encode_images(data.images[index], t_max=t_max)
    return EventDataset(times, channels, data.target[index], 64, 10, duration=3 * t_max)


# ---- MNIST from local IDX files ------------------------------------------------


def read_idx(path: str | Path) -> UInt8[np.ndarray, "*shape"]:
    """Read an IDX file (optionally gzipped), as distributed by LeCun et al."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        zero, dtype_code, ndim = struct.unpack(">HBB", f.read(4))
        if zero != 0 or dtype_code != 0x08:
            raise ValueError(f"{path}: not an unsigned-byte IDX file")
        shape = struct.unpack(">" + "I" * ndim, f.read(4 * ndim))
        data = np.frombuffer(f.read(), dtype=np.uint8)
    return data.reshape(shape)


def mnist(path: str | Path, split: str = "train", t_max: float = 20.0, limit: int | None = None) -> EventDataset:
    """MNIST from the IDX files in directory `path` (`train-images-idx3-ubyte[.gz]`, ...)."""
    root = Path(path)
    prefix = "train" if split == "train" else "t10k"

    def find(kind: str) -> Path:
        for name in (f"{prefix}-{kind}-idx{3 if kind == 'images' else 1}-ubyte", ):
            for candidate in (root / name, root / (name + ".gz")):
                if candidate.exists():
                    return candidate
        raise FileNotFoundError(f"no {prefix} {kind} IDX file in {root}")

    images = read_idx(find("images"))
    labels = read_idx(find("labels"))
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    times, channels = latency_encode_images(images, t_max=t_max)
    # keep only spiking pixels, padded, so the event loop is short
    order = np.argsort(times, axis=1, kind="stable")
    times = np.take_along_axis(times, order, axis=1)
    channels = np.take_along_axis(channels, order, axis=1)
    width = int(np.max(np.sum(np.isfinite(times), axis=1)))
    return EventDataset(times[:, :width], channels[:, :width], labels.astype(int), images[0].size, 10, 3 * t_max)


# ---- delayed-memory XOR (eventax paper, EGRU) -----------------------------------


def delayed_xor(size: int = 1000, seed: int = 0, delay: float = 40.0, pulse_gap: float = 10.0, duration: float | None = None) -> EventDataset:
    """Two input pulses separated by a delay; the label is their XOR.

    Channel 0 (1) carries a spike when the first bit is 0 (1), at t = 5 ms;
    channels 2/3 carry the second bit `delay` ms later; channel 4 is a
    "respond now" cue `pulse_gap` ms after that.  The network must remember
    the first bit across the delay.
    """
    rng = np.random.RandomState(seed)
    a = rng.randint(2, size=size)
    b = rng.randint(2, size=size)
    t_a, t_b = 5.0, 5.0 + delay
    t_cue = t_b + pulse_gap
    times = np.stack([np.full(size, t_a), np.full(size, t_b), np.full(size, t_cue)], axis=1)
    channels = np.stack([a, 2 + b, np.full(size, 4)], axis=1)
    return EventDataset(times, channels, (a ^ b).astype(int), 5, 2, duration=duration or t_cue + 20.0)
