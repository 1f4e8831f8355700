"""How far a map's confidence can be trusted: reliability diagram and expected calibration error.

For the pixels with a reference class, the top-class confidence (``confidence.tif``, in percent)
is binned into ``n_bins`` equal-width bins; in each bin the mean confidence is compared with the
share of pixels whose mapped class is right. A calibrated map has them equal; the expected
calibration error (ECE, Guo et al. 2017) is their gap averaged over bins weighted by pixel count,
computed by torchmetrics' ``binary_calibration_error`` over (confidence, correct).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torchmetrics.functional.classification import binary_calibration_error

N_BINS = 10


@dataclass
class Reliability:
    edges: list[float]  # [n_bins + 1] in [0, 1]
    pixels: list[int]  # [n_bins]
    confidence: list[float | None]  # mean confidence per bin (None: empty bin)
    accuracy: list[float | None]  # share of correct pixels per bin
    ece: float
    mean_confidence: float
    overall_accuracy: float

    def to_dict(self) -> dict:
        return asdict(self)


def reliability(confidence: np.ndarray, correct: np.ndarray, n_bins: int = N_BINS) -> Reliability:
    """Reliability bins and ECE of top-class ``confidence`` (in [0, 1]) against ``correct`` (bool), any shape."""
    conf = np.asarray(confidence, np.float64).ravel()
    hit = np.asarray(correct, bool).ravel()
    if conf.shape != hit.shape or conf.size == 0:
        raise ValueError("confidence and correct must be non-empty and of one shape")
    if conf.min() < 0 or conf.max() > 1:
        raise ValueError("confidence must lie in [0, 1]")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)  # (lo, hi] bins, 0 in the first
    pixels = np.bincount(which, minlength=n_bins)
    conf_sum = np.bincount(which, weights=conf, minlength=n_bins)
    hit_sum = np.bincount(which, weights=hit, minlength=n_bins)
    mean = [float(c / n) if n else None for c, n in zip(conf_sum, pixels)]
    accuracy = [float(h / n) if n else None for h, n in zip(hit_sum, pixels)]
    ece = float(binary_calibration_error(torch.from_numpy(conf), torch.from_numpy(hit).long(), n_bins=n_bins,
                                         norm="l1"))
    return Reliability(edges.tolist(), pixels.tolist(), mean, accuracy, ece, float(conf.mean()), float(hit.mean()))


def plot_reliability(curves: dict[str, Reliability], path: str | Path, title: str = "") -> Path:
    """A reliability diagram (accuracy against confidence per bin, one line per curve) as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.6, 4.2), dpi=110)
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="calibrated")
    for name, r in curves.items():
        points = [(c, a) for c, a in zip(r.confidence, r.accuracy) if c is not None]
        ax.plot(*zip(*points), marker="o", ms=3, label=f"{name} (ECE {100 * r.ece:.1f} %)")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence of the mapped class", ylabel="share correct", title=title)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
