"""Precision-guided fusion: the expert's class wins where its doubt-weighted precision beats the decoder."""
import pytest
import torch

from landsegmenter.model.precision_fusion import coverage_doubt, precision_guided_fusion


def probabilities(*pixels):
    """[1, K, 1, N] log-probabilities from N pixels' class probabilities."""
    return torch.tensor(pixels, dtype=torch.float64).T[None, :, None, :].log()


def test_the_expert_wins_where_its_support_beats_the_decoders_top_probability():
    decoder = probabilities([0.6, 0.3, 0.1], [0.4, 0.35, 0.25], [0.9, 0.05, 0.05])
    expert = probabilities([0.1, 0.1, 0.8], [0.1, 0.1, 0.8], [0.1, 0.1, 0.8])  # says class 2 everywhere
    fused = precision_guided_fusion(decoder, expert, torch.tensor([0.2, 0.0, 0.5]), torch.ones(1, 3)).exp()[0, :, 0]
    assert fused.argmax(0).tolist() == [0, 2, 0]  # 0.5 > 0.4 only at the second pixel
    # F = max(P, R) renormalised: second pixel (0.4, 0.35, 0.5) / 1.25
    assert fused[:, 1].tolist() == pytest.approx([0.32, 0.28, 0.40])
    assert fused.sum(0).tolist() == pytest.approx([1.0, 1.0, 1.0])


def test_the_expert_chooses_among_the_classes_it_knows_and_the_decoders_doubt_scales_its_support():
    decoder = probabilities([0.5, 0.3, 0.2])
    expert = probabilities([0.1, 0.7, 0.2])  # prefers class 1, of which it has no record
    precision = torch.tensor([0.0, 0.0, 0.9])
    fused = precision_guided_fusion(decoder, expert, precision, torch.ones(1, 3)).exp()[0, :, 0, 0]
    assert fused.argmax().item() == 2
    assert fused[2].item() == pytest.approx(0.9 / (0.5 + 0.3 + 0.9))
    half_sure = precision_guided_fusion(decoder, expert, precision, torch.tensor([[1.0, 1.0, 0.5]])).exp()[0, :, 0, 0]
    assert half_sure.argmax().item() == 0  # 0.5 x 0.9 = 0.45 < 0.5
    assert half_sure[2].item() == pytest.approx(0.45 / 1.25)


def test_the_expert_does_not_fall_back_to_a_class_the_decoder_is_sure_of():
    decoder = probabilities([0.5, 0.3, 0.2])
    expert = probabilities([0.1, 0.2, 0.7])  # says class 2, which the decoder maps with confidence
    fused = precision_guided_fusion(decoder, expert, torch.tensor([0.0, 0.9, 0.9]), torch.tensor([[0.0, 1.0, 0.0]]))
    assert torch.allclose(fused.exp(), decoder.exp())  # no support for its choice; class 1 is not its choice


def test_without_support_the_decoder_is_returned_unchanged():
    decoder = probabilities([0.6, 0.3, 0.1], [0.2, 0.2, 0.6])
    fused = precision_guided_fusion(decoder, torch.randn(1, 3, 1, 2), torch.zeros(3), torch.ones(1, 3))
    assert torch.allclose(fused.exp(), decoder.exp())


def test_coverage_doubt_spreads_the_decoders_confidence_over_what_the_expert_finds():
    # The decoder maps class 1 at one pixel with 0.9; the expert chooses class 1 at four pixels.
    decoder = probabilities([0.1, 0.9, 0.0], [0.6, 0.3, 0.1], [0.6, 0.3, 0.1], [0.6, 0.3, 0.1], [0.8, 0.1, 0.1])
    expert = probabilities(*[[0.1, 0.8, 0.1]] * 4, [0.8, 0.1, 0.1])
    precision = torch.tensor([0.5, 0.8, 0.0])
    doubt = coverage_doubt(decoder, expert, precision, threshold=0.5)
    # class 1: 0.9 over max(1, 4) pixels = 0.225 -> (0.5 - 0.225) / 0.5; class 0: (0.6 * 3 + 0.8) / 4 >= 0.5
    assert doubt[0].tolist() == pytest.approx([0.0, 0.55, 0.0])
    fused = precision_guided_fusion(decoder, expert, precision, doubt).exp()[0, :, 0]
    assert fused.argmax(0).tolist() == [1, 0, 0, 0, 0]  # support 0.8 x 0.55 = 0.44 < 0.6 keeps class 0
    valid = torch.tensor([[[True, True, False, False, True]]])
    only_two = coverage_doubt(decoder, expert, precision, 0.5, valid)  # 0.9 over max(1, 2)
    assert only_two[0, 1].item() == pytest.approx((0.5 - 0.45) / 0.5)
