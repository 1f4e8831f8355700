"""The full model (tiny preset): shapes, padding, gradients, fusion switch, validation, save/load."""
from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
import yaml

from landsegmenter.errors import LandSegError
from landsegmenter.model.fusion import confidence_guided_fusion
from landsegmenter.model.io import CONFIG_FILE, WEIGHTS_FILE, load_model, save_model
from landsegmenter.model.landsegmenter import LandSegmenter
from landsegmenter.model.presets import build_model, config_from_dict, config_to_dict, preset_config
from landsegmenter.model.protocol import Segmenter

S2 = [0.443, 0.490, 0.560, 0.665, 0.705, 0.740, 0.783, 0.842, 0.865, 0.945, 1.375, 1.610, 2.190]
BAND_SETS = {2: [0.665, 0.842], 4: [0.490, 0.560, 0.665, 0.842], 13: S2}
CLASSES = ["water", "forest", "cropland", "grassland", "built-up", "bare ground", "wetland"]


@pytest.fixture(scope="module")
def model() -> LandSegmenter:
    torch.manual_seed(0)
    return build_model("tiny").eval()


def run(model, image, bands, names):
    with torch.no_grad():
        return model(image, torch.tensor(bands), names)


def test_tiny_model_is_a_segmenter(model):
    assert isinstance(model, Segmenter)
    assert model.config.preset == "tiny" and model.fusion


@pytest.mark.parametrize("channels, k", [(2, 1), (4, 3), (13, 7)])
def test_any_band_count_and_class_count(model, channels, k):
    logits = run(model, torch.randn(2, channels, 64, 64), BAND_SETS[channels], CLASSES[:k])
    assert logits.shape == (2, k, 64, 64)
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()


def test_odd_size_is_padded_and_cropped(model):
    image = torch.randn(1, 4, 100, 75)
    model.fusion = False
    try:
        logits = run(model, image, BAND_SETS[4], CLASSES[:3])
        # Zero padding to 128 x 96 happens inside: the same image padded by hand gives the same top-left.
        padded = run(model, F.pad(image, (0, 21, 0, 28)), BAND_SETS[4], CLASSES[:3])
    finally:
        model.fusion = True
    assert logits.shape == (1, 3, 100, 75)
    torch.testing.assert_close(logits, padded[..., :100, :75], atol=1e-5, rtol=0)
    fused = run(model, image, BAND_SETS[4], CLASSES[:3])
    assert fused.shape == (1, 3, 100, 75) and torch.isfinite(fused).all()


def test_fusion_switch(model):
    image, bands = torch.randn(1, 13, 64, 64), torch.tensor(S2)
    with torch.no_grad():
        train_out = model.forward_train(image, bands, CLASSES)
        fused = model(image, bands, CLASSES)
        model.fusion = False
        plain = model(image, bands, CLASSES)
        model.fusion = True
    assert train_out.decoder_logits.shape == train_out.similarity_logits.shape == (1, 7, 64, 64)
    torch.testing.assert_close(plain, train_out.decoder_logits, atol=1e-5, rtol=0)
    assert not torch.allclose(fused, plain, atol=1e-3)
    # Fused scores are log-probabilities (at stride 4, interpolated): they exponentiate to ~1 per pixel.
    torch.testing.assert_close(fused.exp().sum(1), torch.ones(1, 64, 64), atol=0.05, rtol=0)
    # Randomly initialised heads are unsure, so the fused labels follow the full-resolution rule closely.
    threshold = model.fusion_rule.threshold
    reference = confidence_guided_fusion(train_out.decoder_logits, train_out.similarity_logits, threshold)
    agreement = (reference.argmax(1) == fused.argmax(1)).float().mean()
    assert agreement > 0.9


def test_gradients_reach_trainable_parts_but_not_text_encoder():
    torch.manual_seed(1)
    model = build_model("tiny").train()
    image, bands = torch.randn(1, 4, 64, 64), torch.tensor(BAND_SETS[4])
    target = torch.randint(0, 3, (1, 64, 64))
    out = model.forward_train(image, bands, CLASSES[:3])
    loss = F.cross_entropy(out.decoder_logits, target) + F.cross_entropy(out.similarity_logits, target)
    loss.backward()

    def has_grad(module):
        return any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())

    assert has_grad(model.decoder.transformer) and has_grad(model.decoder.hypernetwork)
    assert has_grad(model.decoder.conv_s0) and has_grad(model.decoder.conv_s1)
    assert has_grad(model.prompter.projection)
    assert has_grad(model.similarity_head) and model.similarity_head.logit_scale.grad is not None
    assert has_grad(model.image_encoder.backbone) and has_grad(model.image_encoder.neck)
    assert has_grad(model.image_encoder.adapter)
    assert all(not p.requires_grad and p.grad is None for p in model.prompter.encoder.parameters())
    assert not model.prompter.encoder.training


@pytest.mark.parametrize(
    "names, message",
    [
        ([], "no class names"),
        (["water", "  "], "blank"),
        (["Water", "forest", "water "], "duplicate"),
        (["urban_area", "urban area"], "duplicate"),
        ("water", "list of strings"),
        (["water", 3], "not a string"),
    ],
)
def test_validate_rejects_bad_class_names(model, names, message):
    with pytest.raises(LandSegError, match=message):
        model.validate(torch.tensor(S2), names)
    with pytest.raises(LandSegError, match=message):
        model(torch.randn(1, 13, 32, 32), torch.tensor(S2), names)


def test_validate_rejects_bad_wavelengths(model):
    model.validate(torch.tensor(S2), CLASSES)
    with pytest.raises(LandSegError, match="positive"):
        model.validate(torch.tensor([0.665, -1.0]), CLASSES)
    with pytest.raises(LandSegError, match="positive"):
        model.validate([0.665, float("nan")], CLASSES)
    with pytest.raises(LandSegError, match="1-D"):
        model.validate(torch.tensor([]), CLASSES)
    with pytest.raises(LandSegError, match="4 bands but 13"):
        model(torch.randn(1, 4, 32, 32), torch.tensor(S2), CLASSES)


def test_presets_and_overrides():
    assert preset_config("paper").text.encoder == "minilm"  # no CLIP weights on disk: documented fallback
    clip = preset_config("paper", text={"clip_weights": "w.pt", "clip_vocab": "bpe.txt.gz"})
    assert clip.text.encoder == "clip" and clip.text.clip.width == 512 and clip.text.clip.layers == 12
    cfg = preset_config("tiny", fusion=False, decoder={"depth": 1})
    assert cfg.decoder.depth == 1 and not cfg.fusion
    assert cfg.decoder.num_heads == preset_config("tiny").decoder.num_heads
    assert config_from_dict(config_to_dict(preset_config("default"))) == preset_config("default")
    with pytest.raises(LandSegError, match="unknown model preset"):
        build_model("huge")
    with pytest.raises(LandSegError, match="unknown model option"):
        preset_config("tiny", decoder={"width": 3})


@pytest.fixture(scope="module")
def saved(model, tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny_model")
    save_model(model, directory)
    return directory


def test_save_load_round_trip(model, saved):
    meta = yaml.safe_load((saved / CONFIG_FILE).read_text())
    assert meta["preset"] == "tiny" and len(meta["weights_sha256"]) == 64
    assert not meta["text_encoder_stored"]  # MiniLM comes from the installed package
    from safetensors import safe_open

    with safe_open(str(saved / WEIGHTS_FILE), "pt") as f:
        assert not any(k.startswith("prompter.encoder.") for k in f.keys())

    loaded = load_model(saved, preset="tiny")
    assert not loaded.training
    original_state, loaded_state = model.state_dict(), loaded.state_dict()
    assert original_state.keys() == loaded_state.keys()
    for name, tensor in original_state.items():
        assert torch.equal(tensor, loaded_state[name]), name
    image = torch.randn(1, 13, 64, 64)
    torch.testing.assert_close(run(loaded, image, S2, CLASSES), run(model, image, S2, CLASSES), atol=0, rtol=0)


def test_load_as_other_preset_fails(saved, tmp_path):
    with pytest.raises(LandSegError, match="'tiny' model, not a 'default'"):
        load_model(saved, preset="default")
    # A config claiming another architecture is caught by the tensor shapes.
    other = tmp_path / "relabelled"
    other.mkdir()
    (other / WEIGHTS_FILE).write_bytes((saved / WEIGHTS_FILE).read_bytes())
    meta = yaml.safe_load((saved / CONFIG_FILE).read_text())
    meta["preset"] = "default"
    meta["config"] = config_to_dict(dataclasses.replace(preset_config("default"), image=dataclasses.replace(
        preset_config("default").image, pretrained=None)))
    (other / CONFIG_FILE).write_text(yaml.safe_dump(meta))
    with pytest.raises(LandSegError, match="does not fit the 'default' architecture"):
        load_model(other, preset="default")


def test_corrupt_weights_fail_cleanly(saved, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / CONFIG_FILE).write_text((saved / CONFIG_FILE).read_text())
    data = (saved / WEIGHTS_FILE).read_bytes()
    (broken / WEIGHTS_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(LandSegError, match="corrupt or was modified"):
        load_model(broken)

    # Garbage whose sha256 matches config.yaml still fails as unreadable, not with a traceback.
    import hashlib

    garbage = b"\xff" * 64
    (broken / WEIGHTS_FILE).write_bytes(garbage)
    meta = yaml.safe_load((saved / CONFIG_FILE).read_text())
    meta["weights_sha256"] = hashlib.sha256(garbage).hexdigest()
    (broken / CONFIG_FILE).write_text(yaml.safe_dump(meta))
    with pytest.raises(LandSegError, match="cannot read"):
        load_model(broken)

    (broken / CONFIG_FILE).write_text("format: something-else\n")
    with pytest.raises(LandSegError, match="not a LandSegmenter model config"):
        load_model(broken)
    with pytest.raises(LandSegError, match="config.yaml is missing"):
        load_model(tmp_path / "nowhere")


def test_clip_text_model_saves_its_tower_and_vocabulary(tmp_path):
    vocab = tmp_path / "bpe.txt"
    vocab.write_text("#version: tiny\nw a\nwa t\ne r</w>\nwat er</w>\n")
    torch.manual_seed(2)
    clip = {"vocab_size": 512 + 4 + 2, "context_length": 16, "width": 32, "heads": 2, "layers": 1, "embed_dim": 16}
    model = build_model("tiny", text={"encoder": "clip", "clip": clip, "clip_vocab": str(vocab)}).eval()
    assert model.prompter.text_dim == 16
    save_model(model, tmp_path / "saved")
    vocab.unlink()  # the saved directory is self-contained
    loaded = load_model(tmp_path / "saved")
    assert yaml.safe_load((tmp_path / "saved" / CONFIG_FILE).read_text())["text_encoder_stored"]
    for name, tensor in model.prompter.encoder.state_dict().items():
        assert torch.equal(tensor, loaded.prompter.encoder.state_dict()[name]), name
    image = torch.randn(1, 2, 32, 32)
    names = ["water", "wet"]
    torch.testing.assert_close(run(loaded, image, BAND_SETS[2], names), run(model, image, BAND_SETS[2], names))
