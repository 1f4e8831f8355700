"""The spectral-knowledge expert and its place in the class-wise confidence-guided fusion."""
import numpy as np
import pytest
import rasterio
import torch

from landsegmenter.errors import LandSegError
from landsegmenter.geo.reflectance import reflectance_stats
from landsegmenter.model.fusion import class_weights
from landsegmenter.model.knowledge import ABSTAIN, SpectralKnowledge
from landsegmenter.model.landsegmenter import fusion_set, set_fusion_mode
from landsegmenter.model.presets import build_model

S2_BANDS = [2, 3, 4, 8, 12, 13]  # B02 B03 B04 B08 B11 B12
S2_WAVELENGTHS = [0.49, 0.56, 0.665, 0.842, 1.61, 2.19]


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_model("tiny").eval()


@pytest.fixture(scope="module")
def s2_patch(s2_scene):
    """Real TOA reflectance [1, 6, 256, 256] of the German scene and its Dynamic World labels."""
    window = ((256, 512), (0, 256))
    with rasterio.open(s2_scene) as src:
        reflectance = src.read(S2_BANDS, window=window).astype(np.float32) / 10000
    with rasterio.open(s2_scene.parent / "dynamic_world_label.tif") as src:
        labels = src.read(1, window=window)
    return torch.from_numpy(reflectance)[None], labels


def test_concepts_by_keyword_then_by_text_similarity(tiny):
    expert = SpectralKnowledge()
    names = ["mixed forest", "dunes", "open water", "sports field equipment", "unicorn habitat"]
    assert expert.concepts(names, None) == ["trees", None, "water", "crops", None]  # keywords only
    concepts = expert.concepts(names, tiny.prompter)
    assert concepts[:3] == ["trees", "bare", "water"]  # "dunes" is near "sand" in the text space
    assert concepts[4] is None  # nothing near: the expert abstains


def test_water_and_trees_found_on_real_pixels(tiny, s2_patch):
    reflectance, labels = s2_patch
    logits, known = SpectralKnowledge()(reflectance, S2_WAVELENGTHS, ["water", "trees", "unicorn habitat"],
                                        tiny.prompter)
    assert known.tolist() == [True, True, False]
    assert (logits[0, 2] == ABSTAIN).all()
    winner = logits[0].argmax(0).numpy()
    water, trees = labels == 0, labels == 1  # Dynamic World: 0 water, 1 trees
    assert water.sum() > 100 and trees.sum() > 100
    assert (winner[water] == 0).mean() > 0.8
    assert (winner[trees] == 1).mean() > 0.6


def test_without_red_and_nir_the_expert_abstains(s2_patch):
    reflectance, _ = s2_patch
    logits, known = SpectralKnowledge()(reflectance[:, :3], S2_WAVELENGTHS[:3], ["water", "trees"])
    assert not known.any() and (logits == ABSTAIN).all()


def test_fusion_hands_over_only_the_classes_the_expert_knows():
    decoder = torch.zeros(1, 3, 4, 4)
    decoder[:, 0] = 5.0  # confident in class 0 everywhere: classes 1 and 2 never win
    expert = torch.zeros(1, 3, 4, 4)
    expert[:, 1, :2] = 5.0
    expert[:, 2, 2:] = 5.0
    both = class_weights(decoder, expert, threshold=0.7)
    only_first = class_weights(decoder, expert, threshold=0.7, available=torch.tensor([True, True, False]))
    assert both[0].tolist() == [0.0, 1.0, 1.0]
    assert only_first[0].tolist() == [0.0, 1.0, 0.0]


def test_knowledge_changes_the_map_only_for_reflectance_models(tiny, s2_patch):
    reflectance, _ = s2_patch
    mean, std = (torch.from_numpy(v).view(1, -1, 1, 1) for v in reflectance_stats(S2_WAVELENGTHS))
    image, wl = (reflectance - mean) / std, torch.tensor(S2_WAVELENGTHS)
    names = ["water", "trees", "built", "bare"]
    with torch.inference_mode():
        tiny.normalisation = "auto"
        tiny.fusion, tiny.knowledge = False, True
        plain = tiny(image, wl, names)
        tiny.normalisation = "reflectance"
        with fusion_set(tiny, "knowledge"):
            fused = tiny(image, wl, names)
        with fusion_set(tiny, "off"):
            off = tiny(image, wl, names)
    tiny.normalisation = "auto"
    assert torch.equal(plain, off)  # without reflectance inputs the expert is never used
    assert not torch.allclose(fused, off)
    water = fused[0].argmax(0) == 0
    assert water.any()  # an untrained decoder never picks water with confidence; the expert brings it in


def test_fusion_modes(tiny):
    tiny.normalisation = "auto"
    with pytest.raises(LandSegError, match="reflectance"):
        set_fusion_mode(tiny, "knowledge")
    with pytest.raises(LandSegError, match="fusion must be one of"):
        set_fusion_mode(tiny, "maybe")
    set_fusion_mode(tiny, "on")
    assert (tiny.fusion, tiny.knowledge) == (True, False)
    tiny.normalisation = "reflectance"
    set_fusion_mode(tiny, "on")
    assert (tiny.fusion, tiny.knowledge) == (True, True)
    with fusion_set(tiny, "off"):
        assert (tiny.fusion, tiny.knowledge) == (False, False)
    assert (tiny.fusion, tiny.knowledge) == (True, True)  # restored
    tiny.normalisation = "auto"


def test_a_measured_precision_lets_the_expert_recover_water_and_nothing_else(tiny, s2_patch):
    reflectance, labels = s2_patch
    mean, std = (torch.from_numpy(v).view(1, -1, 1, 1) for v in reflectance_stats(S2_WAVELENGTHS))
    image, wl = (reflectance - mean) / std, torch.tensor(S2_WAVELENGTHS)
    names, water = ["trees", "built", "water"], torch.from_numpy(labels == 0)  # Dynamic World 0: water

    def mapped(mode, precision=None):
        tiny.config.knowledge_precision = precision
        with torch.inference_mode(), fusion_set(tiny, mode):
            return tiny(image, wl, names).argmax(1)[0]

    tiny.normalisation, tiny.config.decoder_temperature = "reflectance", 100.0  # a decoder in full doubt
    try:
        plain = mapped("off")
        recovered = mapped("knowledge", {"water": 0.9, "built": 0.05})
        unsupported = mapped("knowledge", {})
    finally:
        tiny.normalisation, tiny.config.knowledge_precision, tiny.config.decoder_temperature = "auto", None, 1.0
    changed = recovered != plain
    assert (recovered[water] == 2).float().mean() > 0.8
    # built's precision (0.05) never beats even a doubtful decoder: what changes is water, bar the
    # bilinear upsampling's edges between the stride-4 cells
    assert (changed & (recovered != 2)).float().mean() < 0.005
    assert changed[~water].float().mean() < 0.2  # the reliable expert does not flood the land
    # no measured precision: the expert never wins a pixel (the few that differ are upsampling edges of
    # log-probabilities against raw logits)
    assert (unsupported != plain).float().mean() < 0.005
