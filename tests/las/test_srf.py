"""Band simulation from spectral responses: weights that fit the target response and sum to one."""
from __future__ import annotations

import numpy as np
import pytest

from landsegmenter.errors import LandSegError
from landsegmenter.las.srf import band_weights, read_response, simulate


def _boxcar(lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    wavelengths = np.arange(lo - 5, hi + 6, 1.0)
    return wavelengths, ((wavelengths >= lo) & (wavelengths <= hi)).astype(float)


def test_a_band_that_matches_one_source_band_takes_it_alone():
    sources = {"B03": _boxcar(540, 580), "B04": _boxcar(650, 680), "B08": _boxcar(785, 900)}
    assert band_weights(_boxcar(650, 680), sources) == {"B04": pytest.approx(1.0)}


def test_a_band_spanning_two_source_bands_mixes_them_by_coverage():
    sources = {"left": _boxcar(700, 749), "right": _boxcar(750, 849)}
    weights = band_weights(_boxcar(700, 849), sources)
    assert weights["left"] == pytest.approx(1 / 3, abs=0.01) and weights["right"] == pytest.approx(2 / 3, abs=0.01)
    flat = {"left": np.full((2, 2), 0.3), "right": np.full((2, 2), 0.3)}
    assert np.allclose(simulate(flat, weights), 0.3)  # a flat spectrum keeps its reflectance


def test_a_band_the_sources_do_not_cover_is_an_error():
    with pytest.raises(LandSegError, match="cover only 0%"):
        band_weights(_boxcar(2100, 2300), {"B04": _boxcar(650, 680)})


def test_responses_in_micrometres_are_read_in_nanometres():
    wavelengths, response = read_response("3 B5\n0.850 0.1\n0.851 1.0\n0.852 -0.001\n")
    assert np.allclose(wavelengths, [850, 851, 852]) and response.min() == 0.0
