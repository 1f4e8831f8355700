"""Reliability / ECE of a map's confidence, and the pseudo-labels self-training would take from it."""
import numpy as np
import pytest

from landsegmenter.eval.calibration import plot_reliability, reliability
from landsegmenter.eval.pseudo_labels import pseudo_label_report, selected_pixels, selection_precision


def test_reliability_bins_and_ece_on_a_fixed_histogram():
    # 10 pixels at 0.95 confidence, 8 right; 10 at 0.55, 3 right
    confidence = np.array([0.95] * 10 + [0.55] * 10)
    correct = np.array([True] * 8 + [False] * 2 + [True] * 3 + [False] * 7)
    r = reliability(confidence, correct, n_bins=10)
    assert r.pixels[9] == 10 and r.pixels[5] == 10 and sum(r.pixels) == 20
    assert r.accuracy[9] == pytest.approx(0.8) and r.confidence[5] == pytest.approx(0.55)
    assert r.accuracy[0] is None
    # ECE = 0.5 * |0.8 - 0.95| + 0.5 * |0.3 - 0.55| = 0.2 (torchmetrics agrees with the bins)
    assert r.ece == pytest.approx(0.2, abs=1e-6)
    assert r.overall_accuracy == pytest.approx(0.55)


def test_a_calibrated_map_has_no_ece_and_bad_inputs_are_refused(tmp_path):
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0, 1, 200_000)
    r = reliability(confidence, rng.uniform(0, 1, confidence.size) < confidence)
    assert r.ece < 0.01
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        reliability(np.array([1.5]), np.array([True]))
    with pytest.raises(ValueError, match="one shape"):
        reliability(np.array([0.5, 0.5]), np.array([True]))
    png = plot_reliability({"model": r}, tmp_path / "r.png", "test")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


CLASSES = np.array([[0, 0, 0, 0, 1, 1, 1, 2, -1, 0]])
CONFIDENCE = np.array([[0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.99, 0.1]])
REFERENCE = np.array([[0, 0, 1, 0, 1, -1, 0, 2, 0, 0]])
NAMES = ["forest", "water", "built"]


def test_whole_scene_selection_keeps_the_most_confident_share_of_the_mapped_pixels():
    keep = selected_pixels(CLASSES, CONFIDENCE, 0.5, 3, balanced=False)  # 9 mapped: floor(4.5) = 4
    assert keep[0].tolist() == [True, True, True, True] + [False] * 6
    report = pseudo_label_report(CLASSES, CONFIDENCE, REFERENCE, 0.5, NAMES)
    assert report["forest"] == {"selected": 4, "share": 1.0, "threshold": 0.6, "precision": 0.75,
                                "reference_share": pytest.approx(6 / 9, abs=1e-4)}
    assert report["water"]["selected"] == 0 and report["water"]["threshold"] is None
    assert selection_precision(CLASSES, CONFIDENCE, REFERENCE, 0.5, 3) == 0.75


def test_class_balanced_selection_keeps_each_class_share_with_its_own_threshold():
    keep = selected_pixels(CLASSES, CONFIDENCE, 0.5, 3, balanced=True)
    # forest 5 pixels -> 2, water 3 -> 1, built 1 -> 0
    assert keep[0].tolist() == [True, True, False, False, True, False, False, False, False, False]
    report = pseudo_label_report(CLASSES, CONFIDENCE, REFERENCE, 0.5, NAMES, balanced=True)
    assert (report["forest"]["threshold"], report["water"]["threshold"]) == (0.8, 0.5)
    assert report["water"]["precision"] == 1.0 and report["built"]["selected"] == 0
    assert report["forest"]["share"] == pytest.approx(2 / 3, abs=1e-4)
