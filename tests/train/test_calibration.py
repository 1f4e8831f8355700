"""Temperature scaling of the decoder on held-out samples."""
from __future__ import annotations

import pytest
import torch

from landsegmenter.model.io import load_model
from landsegmenter.model.precision_fusion import DOUBTS
from landsegmenter.model.presets import build_model
from landsegmenter.train import fusion_selection, train
from landsegmenter.train.calibration import TEMPERATURES, negative_log_likelihood


def test_the_nll_is_least_at_the_temperature_that_undoes_overconfidence():
    generator = torch.Generator().manual_seed(0)
    true_logits = torch.randn(20000, 5, generator=generator) * 1.5
    labels = torch.distributions.Categorical(logits=true_logits).sample()
    pairs = [(true_logits * 3.0, labels)]  # a model three times too sure of itself
    scores = [negative_log_likelihood(pairs, float(t)) for t in TEMPERATURES]
    assert float(TEMPERATURES[scores.index(min(scores))]) == pytest.approx(3.0, rel=0.07)


def test_temperature_keeps_the_argmax_and_softens_the_probabilities(s2_scene):
    torch.manual_seed(0)
    model = build_model("tiny").eval()
    model.fusion = False
    image, wavelengths, names = torch.randn(1, 4, 64, 64), torch.tensor([0.49, 0.56, 0.665, 0.842]), ["a", "b", "c"]
    with torch.inference_mode():
        plain = model(image, wavelengths, names)
        model.config.decoder_temperature = 2.0
        cooled = model(image, wavelengths, names)
    assert torch.equal(plain.argmax(1), cooled.argmax(1))
    assert cooled.softmax(1).max(1).values.mean() < plain.softmax(1).max(1).values.mean()


def test_training_calibrates_the_published_model(tiny_config, tmp_path):
    cfg = tiny_config(trainer={"max_steps": 2, "val_every": 1, "val_batches": 2, "checkpoint_every": 0,
                               "calibrate": True})
    train(cfg, output=tmp_path / "run", quiet=True)
    model = load_model(tmp_path / "run" / "model")
    config = (tmp_path / "run" / "model" / "config.yaml").read_text()
    assert model.decoder_temperature != 1.0 and f"decoder_temperature: {model.decoder_temperature}" in config
    assert "nll_t1:" in config and "fusion_threshold_miou:" in config


def test_the_fusion_threshold_keeps_the_prior_unless_another_is_measurably_better(monkeypatch):
    model = build_model("tiny")
    model.fusion_threshold = 0.7
    measured = {0.3: 0.2000, 0.5: 0.1995, 0.7: 0.1990, 0.9: 0.15}
    monkeypatch.setattr(fusion_selection, "subset_scores",
                        lambda m, samples, modes=("on",): {"s": {"on": (measured[m.fusion_threshold], 0.5)}})
    best, scores = fusion_selection.select_fusion_threshold(model, [])
    assert best == 0.7 and model.fusion_threshold == 0.7 and model.knowledge_rule.threshold == 0.7
    measured[0.3] = 0.25
    best, _ = fusion_selection.select_fusion_threshold(model, [])
    assert best == 0.3 and model.fusion_rule.threshold == 0.3 and model.config.fusion_threshold == 0.3


def test_the_doubt_measure_is_chosen_with_the_threshold_and_kept_unless_the_other_is_better(monkeypatch):
    model = build_model("tiny")
    model.fusion_threshold = 0.5
    measured = {(0.5, "confidence"): 0.2000, (0.5, "coverage"): 0.2008, (0.3, "coverage"): 0.1900}
    monkeypatch.setattr(fusion_selection, "subset_scores", lambda m, samples, modes=("on",): {
        "s": {"on": (measured.get((m.fusion_threshold, m.config.knowledge_doubt), 0.1), 0.5)}})
    best, scores = fusion_selection.select_fusion_threshold(model, [], (0.3, 0.5), doubts=DOUBTS)
    assert (best, model.config.knowledge_doubt) == (0.5, "confidence")  # 0.08 points: a tie
    assert scores == {"0.3 confidence": 0.1, "0.3 coverage": 0.19, "0.5 confidence": 0.2, "0.5 coverage": 0.2008}
    measured[0.5, "coverage"] = 0.2050
    best, _ = fusion_selection.select_fusion_threshold(model, [], (0.3, 0.5), doubts=DOUBTS)
    assert (best, model.config.knowledge_doubt) == (0.5, "coverage")
