"""Simulating one sensor's bands from another's with their relative spectral response functions.

A target band's reflectance is approximated by a weighted sum of source-band reflectances,
with weights that make the same sum of the source responses (each normalised to unit
area) fit the target response (also of unit area) by non-negative least squares on a 1 nm
grid. The weights are then scaled to sum to one, so a spectrally flat surface keeps its
reflectance. Responses are read in the plain format of the pyrsr package: a header line,
then ``wavelength response`` pairs, wavelengths in nanometres or micrometres.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
from scipy.optimize import nnls

from landsegmenter.errors import LandSegError

Response = tuple[np.ndarray, np.ndarray]  # wavelengths (nm), relative response
MIN_WEIGHT = 0.01  # smaller weights are dropped (then the rest are rescaled)
MIN_FIT = 0.4  # share of the target response that the fitted sum must cover


def read_response(text: str) -> Response:
    """Wavelengths (nm) and responses of one band file; micrometres are recognised by their size."""
    pairs = [line.split() for line in text.strip().splitlines()[1:] if line.strip()]
    values = np.array([[float(a), float(b)] for a, b in pairs])
    wavelengths = values[:, 0] * (1000.0 if values[:, 0].max() < 20 else 1.0)
    return wavelengths, np.clip(values[:, 1], 0.0, None)


def band_weights(target: Response, sources: Mapping[str, Response]) -> dict[str, float]:
    """Weights of the source bands whose sum stands in for the target band (summing to one)."""
    grid = np.arange(300.0, 2600.0, 1.0)
    goal = _unit_area(grid, target)
    names = list(sources)
    basis = np.stack([_unit_area(grid, sources[name]) for name in names], axis=1)
    weights, _ = nnls(basis, goal)
    fit = np.minimum(basis @ weights, goal).sum() / goal.sum()
    if fit < MIN_FIT or weights.sum() <= 0:
        raise LandSegError(f"the source bands cover only {fit:.0%} of the target band's response")
    weights[weights / weights.sum() < MIN_WEIGHT] = 0.0
    weights /= weights.sum()
    return {name: float(w) for name, w in zip(names, weights) if w > 0}


def simulate(bands: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
    """The weighted sum of the named source-band arrays."""
    return sum(np.float32(w) * bands[name].astype(np.float32) for name, w in weights.items())


def _unit_area(grid: np.ndarray, response: Response) -> np.ndarray:
    wavelengths, values = response
    on_grid = np.interp(grid, wavelengths, values, left=0.0, right=0.0)
    return on_grid / on_grid.sum()
