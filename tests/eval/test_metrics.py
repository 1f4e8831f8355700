import numpy as np
import pytest
import torch
from torchmetrics.functional.classification import multiclass_cohen_kappa, multiclass_f1_score, multiclass_jaccard_index

from landsegmenter.eval.metrics import ConfusionMatrix, report


def test_hand_computed_two_class_case():
    # reference rows, prediction columns: [[3, 1], [2, 4]]
    ref = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    pred = np.array([0, 0, 0, 1, 0, 0, 1, 1, 1, 1])
    cm = ConfusionMatrix(2)
    cm.update(pred, ref)
    assert cm.matrix[:, :2].tolist() == [[3, 1], [2, 4]]
    r = report(cm.matrix, ["a", "b"])
    assert r.overall_accuracy == pytest.approx(0.7)
    assert r.iou["a"] == pytest.approx(3 / 6) and r.iou["b"] == pytest.approx(4 / 7)
    assert r.users_accuracy["a"] == pytest.approx(3 / 5) and r.producers_accuracy["a"] == pytest.approx(3 / 4)
    pe = (4 * 5 + 6 * 5) / 100
    assert r.kappa == pytest.approx((0.7 - pe) / (1 - pe))
    assert r.macro_f1 == pytest.approx((6 / 9 + 8 / 11) / 2)


def test_ignore_nodata_and_omitted_classes():
    ref = np.array([0, 1, 2, 2, 255, 1])
    pred = np.array([0, 0, 0, 255, 1, 1])  # class 2 never predicted; one prediction is nodata
    cm = ConfusionMatrix(3)
    cm.update(pred, ref)
    r = report(cm.matrix, ["w", "f", "c"])
    assert sum(map(sum, r.matrix)) == 5  # the ignored reference pixel is not counted
    assert r.matrix[2][3] == 1  # nodata prediction counted as an error in its own column
    assert r.omitted_classes == ["c"]
    assert r.producers_accuracy["c"] == 0.0


def test_agrees_with_torchmetrics_on_random_maps():
    rng = np.random.default_rng(1)
    ref = rng.integers(0, 5, 20000)
    pred = np.where(rng.random(20000) < 0.6, ref, rng.integers(0, 5, 20000))
    cm = ConfusionMatrix(5)
    for chunk in range(4):  # streaming updates
        cm.update(pred[chunk::4], ref[chunk::4])
    r = report(cm.matrix, list("abcde"))
    p, t = torch.from_numpy(pred), torch.from_numpy(ref)
    assert r.miou == pytest.approx(multiclass_jaccard_index(p, t, 5, average="macro").item(), abs=1e-6)
    assert r.kappa == pytest.approx(multiclass_cohen_kappa(p, t, 5).item(), abs=1e-6)
    assert r.macro_f1 == pytest.approx(multiclass_f1_score(p, t, 5, average="macro").item(), abs=1e-6)
