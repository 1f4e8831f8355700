"""Two-way transformer, vision-text decoder, similarity head and confidence-guided fusion."""
from __future__ import annotations

import math

import pytest
import torch

from landsegmenter.model.decoder import DecoderConfig, PositionEmbeddingRandom, VisionTextDecoder
from landsegmenter.model.fusion import (
    ConfidenceGuidedFusion,
    class_confidence,
    class_presence,
    confidence_guided_fusion,
    fusion_weights,
)
from landsegmenter.model.similarity_head import SimilarityHead
from landsegmenter.model.transformer import TwoWayTransformer

D = 32


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def image_features(b: int, h16: int, w16: int):
    embedding = torch.randn(b, D, h16, w16)
    high_res = (torch.randn(b, D, 4 * h16, 4 * w16), torch.randn(b, D, 2 * h16, 2 * w16))
    return embedding, high_res


def test_two_way_transformer_shapes_and_class_permutation():
    transformer = TwoWayTransformer(depth=2, embedding_dim=D, num_heads=4, mlp_dim=64).eval()
    image, pe, tokens = torch.randn(2, D, 5, 7), torch.randn(2, D, 5, 7), torch.randn(2, 6, D)
    queries, keys = transformer(image, pe, tokens)
    assert queries.shape == (2, 6, D) and keys.shape == (2, 35, D)

    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    queries_p, keys_p = transformer(image, pe, tokens[:, perm])
    torch.testing.assert_close(queries_p, queries[:, perm], atol=1e-5, rtol=0)
    torch.testing.assert_close(keys_p, keys, atol=1e-5, rtol=0)
    # The image positional encoding matters: the transformer is not blind to it.
    queries_other_pe, _ = transformer(image, pe.flip(-1), tokens)
    assert not torch.allclose(queries_other_pe, queries, atol=1e-3)


def test_positional_encoding_shape_and_range():
    pe = PositionEmbeddingRandom(D // 2)(6, 9)
    assert pe.shape == (D, 6, 9)
    assert pe.abs().max() <= 1.0
    # sin^2 + cos^2 = 1 for every frequency
    torch.testing.assert_close(pe[: D // 2] ** 2 + pe[D // 2 :] ** 2, torch.ones(D // 2, 6, 9))


@pytest.mark.parametrize("k", [1, 3, 24])
def test_decoder_outputs_one_map_per_class(k):
    decoder = VisionTextDecoder(D, DecoderConfig(depth=2, num_heads=4, mlp_dim=64)).eval()
    embedding, high_res = image_features(2, 4, 6)
    logits = decoder(embedding, high_res, torch.randn(k, D), output_size=(64, 96))
    assert logits.shape == (2, k, 64, 96)
    assert decoder(embedding, high_res, torch.randn(2, k, D)).shape == (2, k, 16, 24)  # stride 4 by default
    assert torch.isfinite(logits).all()


def test_decoder_permuting_classes_permutes_maps():
    decoder = VisionTextDecoder(D, DecoderConfig(depth=2, num_heads=4, mlp_dim=64)).eval()
    embedding, high_res = image_features(1, 3, 3)
    tokens = torch.randn(5, D)
    perm = torch.tensor([4, 2, 0, 3, 1])
    logits = decoder(embedding, high_res, tokens)
    torch.testing.assert_close(decoder(embedding, high_res, tokens[perm]), logits[:, perm], atol=1e-5, rtol=0)


def test_decoder_uses_high_resolution_skips():
    decoder = VisionTextDecoder(D, DecoderConfig(depth=1, num_heads=4, mlp_dim=64)).eval()
    embedding, (s4, s8) = image_features(1, 2, 2)
    tokens = torch.randn(2, D)
    base = decoder(embedding, (s4, s8), tokens)
    assert not torch.allclose(decoder(embedding, (s4 + 1, s8), tokens), base)
    assert not torch.allclose(decoder(embedding, (s4, s8 + 1), tokens), base)


def test_similarity_head_is_scaled_cosine():
    head = SimilarityHead(D, text_dim=12)
    embedding, (_, s8) = image_features(2, 3, 4)
    text = torch.nn.functional.normalize(torch.randn(5, 12), dim=-1)
    logits = head(embedding, s8, text)
    assert logits.shape == (2, 5, 6, 8)
    scale = math.exp(head.logit_scale.item())
    assert logits.abs().max() <= scale + 1e-4
    pixels = head.pixel_embeddings(embedding, s8)
    torch.testing.assert_close(logits[1, 3, 2, 5], scale * pixels[1, :, 2, 5] @ text[3])
    assert head(embedding, s8, text, output_size=(48, 64)).shape == (2, 5, 48, 64)
    logits.sum().backward()
    assert head.logit_scale.grad is not None


def logits_of(probs: list) -> torch.Tensor:
    """[K, N] probabilities -> [1, K, 1, N] logits whose softmax is exactly these probabilities."""
    return torch.tensor(probs, dtype=torch.float64).log()[None, :, None, :]


def test_confidence_and_weights_two_classes():
    p = torch.tensor([[0.9, 0.6, 0.3], [0.1, 0.4, 0.7]])[None, :, None, :]
    confidence = class_confidence(p)
    torch.testing.assert_close(confidence, torch.tensor([[0.75, 0.7]]))  # (0.9 + 0.6) / 2 and 0.7
    present = torch.tensor([[True, True]])
    torch.testing.assert_close(fusion_weights(confidence, present, 0.8), torch.tensor([[0.0625, 0.125]]))
    torch.testing.assert_close(fusion_weights(confidence, present, 0.7), torch.tensor([[0.0, 0.0]]))

    fused = confidence_guided_fusion(
        logits_of([[0.9, 0.6, 0.3], [0.1, 0.4, 0.7]]), logits_of([[0.2, 0.7, 0.1], [0.8, 0.3, 0.9]]), threshold=0.8
    ).exp()
    # pixel 0: class 0: 0.9375 * 0.9 + 0.0625 * 0.2 = 0.85625, class 1: 0.875 * 0.1 + 0.125 * 0.8 = 0.1875
    torch.testing.assert_close(fused[0, :, 0, 0], torch.tensor([0.85625, 0.1875], dtype=torch.float64) / 1.04375)
    # pixel 2: class 0: 0.9375 * 0.3 + 0.0625 * 0.1 = 0.2875, class 1: 0.875 * 0.7 + 0.125 * 0.9 = 0.725
    torch.testing.assert_close(fused[0, :, 0, 2], torch.tensor([0.2875, 0.725], dtype=torch.float64) / 1.0125)


def test_confidence_and_weights_three_classes():
    p = logits_of([[0.8, 0.6, 0.2, 0.1], [0.1, 0.3, 0.5, 0.2], [0.1, 0.1, 0.3, 0.7]]).softmax(1)
    # class 0 wins pixels 0, 1; class 1 wins 2; class 2 wins 3
    torch.testing.assert_close(class_confidence(p), torch.tensor([[0.7, 0.5, 0.7]], dtype=torch.float64))
    q = logits_of([[0.1, 0.6, 0.2, 0.3], [0.1, 0.2, 0.2, 0.3], [0.8, 0.2, 0.6, 0.4]]).softmax(1)
    presence = class_presence(q)
    assert presence.tolist() == [[True, False, True]]  # class 1 never wins in Q
    weights = fusion_weights(class_confidence(p), presence, threshold=0.8)
    torch.testing.assert_close(weights, torch.tensor([[0.125, 0.0, 0.125]], dtype=torch.float64))
    # with a minimum area of 30 % only class 2 (75 % of the pixels) counts as present
    assert class_presence(q, min_area=0.3).tolist() == [[False, False, True]]


def test_class_never_predicted_has_zero_confidence():
    p = logits_of([[0.9, 0.8], [0.1, 0.2], [1e-9, 1e-9]]).softmax(1)
    confidence = class_confidence(p)
    assert confidence[0, 1].item() == 0.0 and confidence[0, 2].item() == 0.0
    assert fusion_weights(confidence, torch.tensor([[True, False, True]]), 0.7)[0].tolist() == [0.0, 0.0, 1.0]


def test_fusion_off_returns_decoder_logits_unchanged():
    decoder_logits, similarity_logits = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)
    fusion = ConfidenceGuidedFusion(threshold=0.7, enabled=False)
    assert fusion(decoder_logits, similarity_logits) is decoder_logits
    fusion.enabled = True
    fused = fusion(decoder_logits, similarity_logits)
    assert not torch.allclose(fused, decoder_logits)
    torch.testing.assert_close(fused.exp().sum(1), torch.ones(2, 8, 8))  # log-probabilities


def test_fusion_recovers_a_class_the_decoder_omits():
    # 3 classes on a 4x4 tile: the decoder is sure about class 0 on the left, unsure between
    # 0 and 1 on the right, and never picks class 2; the similarity head sees class 2 on the right.
    p = torch.empty(1, 3, 4, 4)
    p[0, :, :, :2] = torch.tensor([0.95, 0.04, 0.01])[:, None, None]
    p[0, :, :, 2:] = torch.tensor([0.45, 0.5, 0.05])[:, None, None]
    q = torch.empty(1, 3, 4, 4)
    q[0, :, :, :2] = torch.tensor([0.8, 0.1, 0.1])[:, None, None]
    q[0, :, :, 2:] = torch.tensor([0.05, 0.05, 0.9])[:, None, None]
    decoder_logits, similarity_logits = p.log(), q.log()

    assert 2 not in decoder_logits.argmax(1).unique().tolist()
    fused = confidence_guided_fusion(decoder_logits, similarity_logits, threshold=0.7)
    labels = fused.argmax(1)[0]
    assert (labels[:, 2:] == 2).all()  # recovered where the similarity head supports it
    assert (labels[:, :2] == 0).all()  # the confident class is untouched
    # left: class 0 keeps P (c = 0.95), class 2 takes Q (w = 1): [0.95, 0.04, 0.1] / 1.09
    torch.testing.assert_close(fused[0, 0, :, :2].exp(), torch.full((4, 2), 0.95 / 1.09))

    # Without support from the similarity head the omitted class stays omitted.
    q_without = q.clone()
    q_without[0, :, :, 2:] = torch.tensor([0.6, 0.3, 0.1])[:, None, None]
    assert 2 not in confidence_guided_fusion(decoder_logits, q_without.log(), threshold=0.7).argmax(1).unique().tolist()
    # A decoder more confident than the similarity head keeps its class.
    p[0, :, :, 2:] = torch.tensor([0.02, 0.95, 0.03])[:, None, None]
    labels = confidence_guided_fusion(p.log(), similarity_logits, threshold=0.7).argmax(1)[0]
    assert (labels[:, 2:] == 1).all()
