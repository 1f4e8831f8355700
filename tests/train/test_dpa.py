"""Dynamic Pseudo-label Assignment against hand-computed cases."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from landsegmenter.errors import LandSegError
from landsegmenter.train.dpa import (
    count_classes,
    dpa_loss,
    enet_class_weights,
    select_by_confidence,
    select_by_entropy,
    select_class_balanced,
    selection_ratio,
    siamese_forward,
)


def logits_from_probs(rows: list[list[float]], h: int, w: int) -> torch.Tensor:
    """Per-pixel probabilities (row-major over ``[H, W]``) -> logits ``[1, K, H, W]``."""
    p = torch.tensor(rows, dtype=torch.float64)  # [H*W, K]
    return p.log().T.reshape(1, -1, h, w).float()


def test_enet_weights_hand_computed():
    w = enet_class_weights(torch.tensor([90, 10, 0]))
    expected = [1 / math.log(1.92), 1 / math.log(1.12), 1 / math.log(1.02)]
    assert w.tolist() == pytest.approx(expected, rel=1e-6)
    assert w.dtype == torch.float32


@pytest.mark.parametrize("counts", [[0, 0], [-1, 3], []])
def test_enet_weights_reject_bad_counts(counts):
    with pytest.raises(LandSegError):
        enet_class_weights(torch.tensor(counts))


def test_count_classes_leaves_out_ignore():
    labels = torch.tensor([[0, 1, 255], [1, 1, 255]])
    assert count_classes(labels, 3).tolist() == [1, 3, 0]
    with pytest.raises(LandSegError):
        count_classes(torch.tensor([0, 3]), 3)


@pytest.mark.parametrize(
    "epoch, factor, expected",
    [(0, 0.5, 0.05), (4, 0.5, 0.25), (9, 0.5, 0.5), (0, 1.0, 0.1), (4, 1.0, 0.5), (9, 1.0, 1.0)],
)
def test_selection_ratio_schedule(epoch, factor, expected):
    assert selection_ratio(epoch, 10, factor) == pytest.approx(expected)


def test_selection_ratio_default_factor():
    assert selection_ratio(9, 10) == pytest.approx(0.5)


@pytest.mark.parametrize(
    "epoch, epochs, factor", [(-1, 10, 0.5), (10, 10, 0.5), (0, 0, 0.5), (0, 10, 0.0), (0, 10, 1.5)]
)
def test_selection_ratio_errors(epoch, epochs, factor):
    with pytest.raises(LandSegError):
        selection_ratio(epoch, epochs, factor)


def test_entropy_selection_keeps_two_most_confident():
    # entropies: 0.056, 0.673, 0.693, 0.325 nats -> pixels 0 and 3 are the most certain
    logits = logits_from_probs([[0.01, 0.99], [0.6, 0.4], [0.5, 0.5], [0.9, 0.1]], 2, 2)
    labels = select_by_entropy(logits, 0.5)
    assert labels.dtype == torch.int64
    assert labels.tolist() == [[[1, 255], [255, 0]]]


def test_selection_counts_floor_and_extremes():
    logits = torch.randn(2, 3, 4, 5, generator=torch.Generator().manual_seed(0))
    for select in (select_by_entropy, select_by_confidence):
        assert (select(logits, 0.3) != 255).sum() == 12  # floor(0.3 * 40)
        assert (select(logits, 0.29) != 255).sum() == 11  # floor(11.6)
        assert (select(logits, 0.0) == 255).all()
        assert torch.equal(select(logits, 1.0), logits.argmax(1))
    with pytest.raises(LandSegError):
        select_by_entropy(logits, 1.5)
    with pytest.raises(LandSegError):
        select_by_entropy(logits[0], 0.5)


def test_selection_ties_are_deterministic_in_pixel_order():
    logits = torch.zeros(1, 2, 2, 2)  # every pixel has the same entropy
    assert select_by_entropy(logits, 0.5).tolist() == [[[0, 0], [255, 255]]]


def test_class_balanced_keeps_rare_class_that_global_drops():
    # four confident class-0 pixels, two less certain class-1 pixels (p1 = 0.7, 0.8)
    probs = [[0.99, 0.01]] * 4 + [[0.3, 0.7], [0.2, 0.8]]
    logits = logits_from_probs(probs, 1, 6)
    global_sel = select_by_entropy(logits, 0.5)  # floor(3) -> three class-0 pixels
    assert global_sel.tolist() == [[[0, 0, 0, 255, 255, 255]]]
    balanced = select_class_balanced(logits, 0.5)  # floor(2) of class 0, floor(1) of class 1
    assert balanced.tolist() == [[[0, 0, 255, 255, 255, 1]]]


def test_class_balanced_per_class_floor():
    logits = torch.randn(2, 3, 4, 5, generator=torch.Generator().manual_seed(1))
    pred = logits.argmax(1)
    sel = select_class_balanced(logits, 0.5)
    for c in range(3):
        n_c = int((pred == c).sum())
        assert int((sel == c).sum()) == n_c // 2
    assert ((sel == pred) | (sel == 255)).all()


def test_confidence_and_entropy_rankings_differ():
    # A: max 0.50, entropy 0.742 nats; B: max 0.55, entropy 1.000 nats
    logits = logits_from_probs([[0.5, 0.49, 0.01], [0.225, 0.225, 0.55]], 1, 2)
    assert select_by_entropy(logits, 0.5).tolist() == [[[0, 255]]]
    assert select_by_confidence(logits, 0.5).tolist() == [[[255, 2]]]


def _batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    src = torch.randn(2, 3, 4, 4, generator=g, requires_grad=True)
    labels = torch.randint(0, 3, (2, 4, 4), generator=g)
    labels[0, 0, :] = 255
    tgt = torch.randn(2, 3, 4, 4, generator=g, requires_grad=True)
    return src, labels, tgt


@pytest.mark.parametrize(
    "selection, select",
    [("entropy", select_by_entropy), ("class_balanced", select_class_balanced), ("confidence", select_by_confidence)],
)
def test_dpa_loss_matches_hand_assembled(selection, select):
    src, labels, tgt = _batch()
    weights = enet_class_weights(torch.tensor([50.0, 30.0, 20.0]))
    loss, stats = dpa_loss(src, labels, tgt, 0.25, weights, selection=selection)

    pseudo = select(tgt.detach(), 0.25)
    expected = F.cross_entropy(src, labels, weight=weights, ignore_index=255) + F.cross_entropy(
        tgt, pseudo, weight=weights, ignore_index=255
    )
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert stats["pseudo_counts"].tolist() == count_classes(pseudo, 3).tolist()
    assert stats["selected_fraction"] == pytest.approx(int((pseudo != 255).sum()) / pseudo.numel())
    if selection != "class_balanced":
        assert stats["selected_fraction"] == pytest.approx(8 / 32)

    grads = torch.autograd.grad(loss, (src, tgt))
    ref = torch.autograd.grad(expected, (src, tgt))
    assert torch.allclose(grads[0], ref[0], atol=1e-7)
    assert torch.allclose(grads[1], ref[1], atol=1e-7)
    # no gradient at unselected target pixels: the pseudo-label choice is not differentiated
    unselected = (pseudo == 255).unsqueeze(1).expand_as(tgt)
    assert (grads[1][unselected] == 0).all()
    assert (grads[1][~unselected] != 0).any()


def test_pseudo_label_term_can_be_weighted_apart_from_the_source_term():
    src, labels, tgt = _batch(2)
    weights = enet_class_weights(torch.tensor([80.0, 15.0, 5.0]))  # class 2 rare in the source: weight ~14
    loss, _ = dpa_loss(src, labels, tgt, 0.5, weights, target_class_weights=torch.ones(3))
    pseudo = select_by_entropy(tgt.detach(), 0.5)
    expected = F.cross_entropy(src, labels, weight=weights, ignore_index=255) + F.cross_entropy(
        tgt, pseudo, ignore_index=255)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    reference, _ = dpa_loss(src, labels, tgt, 0.5, weights)
    assert reference.item() != pytest.approx(loss.item(), rel=1e-3)


def test_a_fixed_teacher_chooses_the_pseudo_labels_and_the_student_gets_the_gradient():
    src, labels, tgt = _batch(3)
    teacher = -tgt.detach()  # disagrees with the student everywhere
    weights = torch.ones(3)
    loss, stats = dpa_loss(src, labels, tgt, 0.5, weights, teacher_logits=teacher)
    pseudo = select_by_entropy(teacher, 0.5)
    assert torch.equal(stats["pseudo_labels"], pseudo)
    expected = F.cross_entropy(src, labels, ignore_index=255) + F.cross_entropy(tgt, pseudo, ignore_index=255)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert not torch.equal(pseudo, select_by_entropy(tgt.detach(), 0.5))


def test_dpa_loss_ratio_zero_is_source_only():
    src, labels, tgt = _batch(1)
    weights = torch.ones(3)
    loss, stats = dpa_loss(src, labels, tgt, 0.0, weights)
    assert loss.item() == pytest.approx(F.cross_entropy(src, labels, ignore_index=255).item(), rel=1e-6)
    assert stats["selected_fraction"] == 0.0
    loss.backward()
    assert (tgt.grad == 0).all()


def test_dpa_loss_rejects_bad_options():
    src, labels, tgt = _batch()
    with pytest.raises(LandSegError):
        dpa_loss(src, labels, tgt, 0.5, torch.ones(3), selection="random")
    with pytest.raises(LandSegError):
        dpa_loss(src, labels, tgt, 0.5, torch.ones(4))


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.head = nn.Conv2d(4, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.bn(self.conv(x))))


def test_siamese_forward_shares_batchnorm_statistics():
    torch.manual_seed(0)
    net = TinyNet().train()
    g = torch.Generator().manual_seed(2)
    src = torch.randn(2, 2, 5, 5, generator=g)
    tgt = torch.randn(3, 2, 5, 5, generator=g) * 3 + 2  # a shifted "domain"
    with torch.no_grad():
        feats = net.conv(torch.cat([src, tgt]))
        src_mean = net.conv(src).mean(dim=(0, 2, 3))
        tgt_mean = net.conv(tgt).mean(dim=(0, 2, 3))
    momentum = net.bn.momentum

    s_logits, t_logits = siamese_forward(net, src, tgt)
    assert s_logits.shape == (2, 3, 5, 5) and t_logits.shape == (3, 3, 5, 5)

    expected = momentum * feats.mean(dim=(0, 2, 3))  # running_mean starts at 0
    assert torch.allclose(net.bn.running_mean, expected, atol=1e-6)
    assert not torch.allclose(net.bn.running_mean, momentum * src_mean, atol=1e-3)
    assert not torch.allclose(net.bn.running_mean, momentum * tgt_mean, atol=1e-3)

    # the outputs are the concatenated forward, split back
    with torch.no_grad():
        net.bn.reset_running_stats()
        joint = net(torch.cat([src, tgt]))
    assert torch.allclose(torch.cat([s_logits, t_logits]).detach(), joint, atol=1e-6)


def test_siamese_forward_splits_every_head():
    net = TinyNet().eval()
    src, tgt = torch.randn(2, 2, 5, 5), torch.randn(3, 2, 5, 5)
    pairs = siamese_forward(lambda x: [net(x), 2 * net(x)], src, tgt)
    assert len(pairs) == 2
    assert torch.allclose(pairs[0][0], net(src), atol=1e-6) and torch.allclose(pairs[1][1], 2 * net(tgt), atol=1e-6)


def test_siamese_forward_rejects_mismatched_images():
    with pytest.raises(LandSegError):
        siamese_forward(TinyNet(), torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 5, 5))
