"""Image encoder: shapes for any band set, adapter fusion, gradients, band selection."""
from __future__ import annotations

import pytest
import torch

from landsegmenter.errors import LandSegError
from landsegmenter.model.afm import AttentionFusion
from landsegmenter.model.hiera import HIERA_SPECS, Hiera, window_partition, window_unpartition
from landsegmenter.model.image_encoder import ImageEncoder, ImageEncoderConfig, StemInput

S2_WAVELENGTHS = [0.443, 0.49, 0.56, 0.665, 0.705, 0.74, 0.783, 0.842, 0.865, 0.945, 1.375, 1.61, 2.19]
BAND_SETS = {
    2: [55465.76, 55465.76],  # Sentinel-1 VV, VH: C-band, 5.5 cm
    4: [0.49, 0.56, 0.665, 0.842],
    6: [0.49, 0.56, 0.665, 0.842, 1.61, 2.19],
    13: S2_WAVELENGTHS,
}
BACKBONES = ["hiera", "efficientnet-b4", "efficientnet-lite0", "efficientnet-lite2"]


def tiny_config(backbone: str = "hiera", **overrides) -> ImageEncoderConfig:
    base = dict(
        backbone=backbone, hiera_size="micro", d_model=32, adapter_dim=32, adapter_depth=1,
        adapter_heads=2, adapter_patch=16, highfreq_dim=8,
    )
    return ImageEncoderConfig(**{**base, **overrides})


@pytest.fixture(scope="module")
def encoders() -> dict[str, ImageEncoder]:
    torch.manual_seed(0)
    return {name: ImageEncoder(tiny_config(name)).eval() for name in BACKBONES}


def set_gammas(encoder: ImageEncoder, value: float) -> None:
    for fusion in encoder.adapter.fusions:
        fusion.gamma.data.fill_(value)


@pytest.mark.parametrize("size", [64, 128])
@pytest.mark.parametrize("channels", sorted(BAND_SETS))
@pytest.mark.parametrize("backbone", BACKBONES)
def test_feature_shapes_for_any_band_set(encoders, backbone: str, channels: int, size: int) -> None:
    encoder = encoders[backbone]
    image = torch.randn(2, channels, size, size)
    with torch.no_grad():
        features = encoder(image, torch.tensor(BAND_SETS[channels]))
    assert features.embedding.shape == (2, 32, size // 16, size // 16)
    assert features.high_res[0].shape == (2, 32, size // 4, size // 4)
    assert features.high_res[1].shape == (2, 32, size // 8, size // 8)
    assert torch.isfinite(features.embedding).all()


@pytest.mark.parametrize("backbone", ["hiera", "efficientnet-lite0"])
def test_gradients_reach_adapter_fusion_and_backbone(backbone: str) -> None:
    torch.manual_seed(1)
    encoder = ImageEncoder(tiny_config(backbone))
    set_gammas(encoder, 0.5)
    features = encoder(torch.randn(2, 6, 64, 64), torch.tensor(BAND_SETS[6]))
    loss = features.embedding.square().mean() + sum(h.square().mean() for h in features.high_res)
    loss.backward()
    named = dict(encoder.named_parameters())
    unused = [n for n, p in named.items() if p.requires_grad and p.grad is None]
    assert not unused, unused
    stem = "backbone.patch_embed.proj.weight" if backbone == "hiera" else "backbone._conv_stem.weight"
    for name in (
        stem,
        "adapter.dofa.patch_embed.weight_generator.fc_weight.weight",
        "adapter.dofa.blocks.0.attn.qkv.weight",
        "adapter.highfreq.stem.0.weight",
        "adapter.fusions.0.mix.weight",
        "adapter.fusions.3.spatial_conv.weight",
        "adapter.fusions.2.gamma",
    ):
        assert named[name].grad.abs().sum() > 0, name


def test_zero_gamma_gets_gradient_so_training_can_open_the_adapter() -> None:
    torch.manual_seed(2)
    encoder = ImageEncoder(tiny_config())
    features = encoder(torch.randn(1, 4, 64, 64), torch.tensor(BAND_SETS[4]))
    features.embedding.square().mean().backward()
    assert all(f.gamma.grad.abs().item() > 0 for f in encoder.adapter.fusions[:3])


@pytest.mark.parametrize("backbone", ["hiera", "efficientnet-b4"])
def test_zero_gamma_leaves_backbone_output_exactly_unchanged(encoders, backbone: str) -> None:
    encoder = encoders[backbone]
    image, wavelengths = torch.randn(1, 13, 64, 64), torch.tensor(S2_WAVELENGTHS)
    with torch.no_grad():
        fused = encoder.stage_features(image, wavelengths, fuse=True)
        plain = encoder.stage_features(image, wavelengths, fuse=False)
        assert all(torch.equal(f, p) for f, p in zip(fused, plain))
        set_gammas(encoder, 0.3)
        try:
            opened = encoder.stage_features(image, wavelengths, fuse=True)
        finally:
            set_gammas(encoder, 0.0)
    assert all(not torch.allclose(o, p) for o, p in zip(opened, plain))


@pytest.mark.parametrize(
    "use_spectral, use_highfreq", [(True, False), (False, True), (False, False)]
)
def test_switching_branches_off_removes_their_parameters(use_spectral: bool, use_highfreq: bool) -> None:
    torch.manual_seed(3)
    cfg = tiny_config(use_spectral=use_spectral, use_highfreq=use_highfreq)
    encoder = ImageEncoder(cfg)
    names = [n for n, _ in encoder.named_parameters()]
    assert any("dofa" in n or "spectral_proj" in n for n in names) == use_spectral
    assert any("highfreq" in n for n in names) == use_highfreq
    full = sum(p.numel() for p in ImageEncoder(tiny_config()).parameters())
    assert sum(p.numel() for p in encoder.parameters()) < full
    if encoder.adapter is None:
        assert not any(n.startswith("adapter.") for n in names)
        return
    set_gammas(encoder, 0.5)
    features = encoder(torch.randn(1, 4, 64, 64), torch.tensor(BAND_SETS[4]))
    (features.embedding.sum() + sum(h.sum() for h in features.high_res)).backward()
    trainable = [p for p in encoder.parameters() if p.requires_grad]
    assert all(p.grad is not None for p in trainable), "a parameter is off the path"


def test_afm_needs_an_adapter_input() -> None:
    with pytest.raises(ValueError):
        AttentionFusion(16, None, None)


def test_stem_input_picks_nearest_band_or_band_mean() -> None:
    rgb = StemInput((0.665, 0.560, 0.490))
    assert rgb.selection(torch.tensor(S2_WAVELENGTHS)).argmax(1).tolist() == [3, 2, 1]
    sar = rgb.selection(torch.tensor(BAND_SETS[2]))
    assert torch.allclose(sar, torch.full((3, 2), 0.5))
    six = StemInput((0.49, 0.56, 0.665, 0.842, 1.61, 2.19))
    assert six.selection(torch.tensor(S2_WAVELENGTHS)).argmax(1).tolist() == [1, 2, 3, 7, 11, 12]
    # Landsat 5 TM: SWIR 1.65 / 2.215 within the SWIR tolerance, no band near 0.842 +- 0.06
    tm = torch.tensor([0.485, 0.56, 0.66, 0.93, 1.65, 11.45, 2.215])
    weights = six.selection(tm)
    assert weights[[0, 1, 2, 4, 5]].argmax(1).tolist() == [0, 1, 2, 4, 6]
    assert torch.allclose(weights[3], torch.full((7,), 1 / 7))
    image = torch.arange(7.0).reshape(1, 7, 1, 1).expand(1, 7, 2, 2)
    assert torch.allclose(six(image, tm)[0, :, 0, 0], torch.tensor([0.0, 1, 2, 3, 4, 6]))


def test_lite_stem_rescales_standardised_input() -> None:
    encoder = ImageEncoder(tiny_config("efficientnet-lite0", use_spectral=False, use_highfreq=False))
    zeros = torch.zeros(1, 3, 32, 32)
    stem = encoder.stem_input(zeros, torch.tensor([0.49, 0.56, 0.665]))
    # a band at its mean maps to ImageNet's mean pixel in (p - 127) / 128 units, red first
    assert torch.allclose(stem[0, :, 0, 0], torch.tensor([-0.0260, -0.0838, -0.1834]), atol=1e-3)


def test_bad_inputs_raise_landseg_error(encoders) -> None:
    encoder = encoders["hiera"]
    with pytest.raises(LandSegError, match="multiples of 32"):
        encoder(torch.randn(1, 4, 48, 64), torch.tensor(BAND_SETS[4]))
    with pytest.raises(LandSegError, match="wavelengths"):
        encoder(torch.randn(1, 4, 64, 64), torch.tensor(BAND_SETS[6]))
    with pytest.raises(LandSegError, match="backbone"):
        ImageEncoder(tiny_config("resnet50"))


def test_hiera_sam2_sizes_have_the_published_widths() -> None:
    tiny = Hiera(HIERA_SPECS["tiny"])
    assert tiny.channels == (96, 192, 384, 768) and len(tiny.blocks) == 12
    assert [b.window_size for b in tiny.blocks] == [8, 8, 4, 4, 14, 0, 14, 0, 14, 0, 14, 7]


def test_window_partition_round_trip_with_padding() -> None:
    x = torch.randn(2, 10, 13, 5)
    windows, padded = window_partition(x, 4)
    assert windows.shape == (2 * 3 * 4, 4, 4, 5) and padded == (12, 16)
    assert torch.equal(window_unpartition(windows, 4, padded, (10, 13)), x)


@pytest.mark.parametrize("backbone", ["hiera", "efficientnet-lite2"])
def test_non_square_tiles(encoders, backbone: str) -> None:
    with torch.no_grad():
        features = encoders[backbone](torch.randn(1, 4, 64, 160), torch.tensor(BAND_SETS[4]))
    assert features.embedding.shape == (1, 32, 4, 10)
    assert features.high_res[0].shape == (1, 32, 16, 40)
