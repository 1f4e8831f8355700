"""Domain adaptation end to end on real data: Sentinel-2 with Dynamic World labels -> Landsat 5 TM (Para).

The source is the ``dw`` subset of the small real LAS store (S2 L1C, six bands, 10 m);
the target is the Landsat 5 TM scene of the shared kit (30 m, read at 10 m).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from landsegmenter import map_scene
from landsegmenter.cli import main as cli
from landsegmenter.errors import LandSegError
from landsegmenter.geo.reflectance import reflectance_stats
from landsegmenter.model.io import load_model, read_model_config, save_model
from landsegmenter.model.presets import build_model
from landsegmenter.model.unet import UNetSegmenter
from landsegmenter.taxonomy.crosswalk import get_crosswalk, index_mapping
from landsegmenter.taxonomy.legends import get_legend
from landsegmenter.train.adapt import Adaptation, adapt
from landsegmenter.train.adapt_config import (
    AdaptConfig, ModelSection, SourceSection, TargetSection, TrainerSection, load_adapt_config, with_overrides,
)
from landsegmenter.train.adapt_data import ScenePatches, SourcePatches, TargetScene, las_source, matching_bands
from landsegmenter.train.dpa import enet_class_weights

LANDSAT5 = "landsat5_tm_19880814_para/landsat5_tm_7band_30m.tif"
TM_BANDS = ["B1", "B2", "B3", "B4", "B5", "B7"]
LEGEND = "nc_landsat7_strata"


@pytest.fixture()
def landsat5(shared_data: Path) -> str:
    return str(shared_data / LANDSAT5)


@pytest.fixture()
def small_config(train_store: Path, landsat5: str, tmp_path: Path):
    def make(**trainer) -> AdaptConfig:
        return AdaptConfig(
            source=SourceSection(store=str(train_store), subsets=["dw"]),
            target=TargetSection(paths=[landsat5], sensor="landsat5_dn", bands=TM_BANDS),
            classes=LEGEND,
            model=ModelSection(architecture="unet", width=4, depth=2),
            trainer=TrainerSection(**{"epochs": 2, "steps_per_epoch": 2, "batch_size": 2, "crop": 64,
                                      "device": "cpu", **trainer}),
            output=str(tmp_path / "adapted"),
        )
    return make


def test_index_mapping_follows_the_crosswalk_and_names():
    lut = index_mapping("dynamic_world", LEGEND)
    dw, nc = get_legend("dynamic_world"), get_legend(LEGEND)
    walk = get_crosswalk("dynamic_world", LEGEND).mapping
    for i, code in enumerate(dw.codes):
        expected = 255 if walk[code] is None else nc.codes.index(walk[code])
        assert lut[i] == expected
    assert nc.names[lut[dw.names.index("built")]] == "developed"
    assert list(index_mapping(LEGEND, LEGEND)) == list(range(len(nc.classes)))


def test_matching_bands_pairs_tm_with_sentinel2_by_wavelength():
    s2 = [0.443, 0.49, 0.56, 0.665, 0.705, 0.74, 0.783, 0.842, 0.865, 0.945, 1.375, 1.61, 2.19]
    tm = [0.485, 0.56, 0.66, 0.83, 1.65, 2.215]
    assert matching_bands(s2, tm).tolist() == [1, 2, 3, 7, 11, 12]
    assert matching_bands(s2[:10], tm) is None  # no SWIR in the source


def test_source_patches_recode_labels_and_count_dropped_classes(train_store: Path):
    source = SourcePatches(las_source(train_store, ["dw"], ["train"]), [0.49, 0.56, 0.665, 0.842, 1.61, 2.19],
                           LEGEND, crop=48)
    counts, dropped = source.class_counts()
    image, label, _ = source.item(0)
    assert image.shape[0] == 6 and set(np.unique(label.numpy())) <= set(range(7)) | {255}
    raw = source.source.dataset[0]["label"].numpy()
    lut = index_mapping("dynamic_world", LEGEND)
    assert np.array_equal(label.numpy()[raw != 255], lut[raw[raw != 255]])
    assert counts.sum() > 0 and set(dropped) <= {"flooded vegetation", "snow and ice"}
    images, labels = source.batch(np.random.default_rng(0), 3)
    assert images.shape == (3, 6, 48, 48) and labels.shape == (3, 48, 48)


def test_target_scene_is_read_at_the_source_gsd(landsat5: str):
    target = TargetScene([landsat5], 64, sensor="landsat5_dn", bands=TM_BANDS, resolution=10.0)
    try:
        assert (target.scene.width, target.scene.height) == (861, 930)
        images, valid = target.batch(np.random.default_rng(1), 2)
        assert images.shape == (2, 6, 64, 64) and valid.dtype == torch.bool
        assert valid.float().mean() >= 0.5
    finally:
        target.close()


def test_adapt_writes_a_model_that_landseg_map_uses(small_config, landsat5: str, tmp_path: Path):
    cfg = small_config()
    result = adapt(cfg, progress=False)
    model_dir = Path(cfg.output)
    meta = read_model_config(model_dir)
    assert meta["architecture"] == "unet" and meta["provenance"]["method"] == "dpa"
    report = json.loads((model_dir / "adapt.json").read_text())
    counts = torch.tensor(list(report["source_class_pixels"].values()))
    assert np.allclose(list(report["class_weights"].values()), enet_class_weights(counts).tolist(), rtol=1e-5)
    ratios = [h["ratio"] for h in report["history"]]
    assert ratios == [0.25, 0.5]
    for h in report["history"]:  # pseudo-labels only on valid pixels, never more than r of them
        assert 0 < h["selected_fraction"] <= h["ratio"] + 1e-6
    assert set(result.dropped_labels) <= {"flooded vegetation", "snow and ice"}

    model = load_model(model_dir)
    assert isinstance(model, UNetSegmenter) and model.class_names == list(get_legend(LEGEND).names)
    out = map_scene([landsat5], ["forest", "water", "developed"], tmp_path / "map", model=str(model_dir),
                    sensor="landsat5_dn", bands=TM_BANDS, resolution=10.0, progress=False, preview=False)
    with rasterio.open(out.classes) as src:
        assert (src.width, src.height, src.res) == (861, 930, (10.0, 10.0))
        assert set(np.unique(src.read(1))) <= {0, 1, 2, 255}
    # the command line, without --classes: the model's own seven classes
    code = cli(["map", landsat5, "--sensor", "landsat5_dn", "--bands", ",".join(TM_BANDS), "--resolution", "10",
                "--model", str(model_dir), "-o", str(tmp_path / "cli-map"), "--quiet", "--no-preview"])
    assert code == 0
    areas = json.loads((tmp_path / "cli-map" / "areas.json").read_text())
    rows = areas["classes"] if isinstance(areas, dict) else areas
    assert [r["class"] for r in rows] == list(get_legend(LEGEND).names)
    # and landseg evaluate, against a reference in the legend's codes on the 30 m grid
    reference = tmp_path / "reference.tif"
    with rasterio.open(landsat5) as src:
        profile = src.profile | {"count": 1, "dtype": "uint8", "nodata": 0}
        codes = np.where(src.read(4) > 40, 5, 6).astype(np.uint8)  # forest where NIR is bright, else water
    with rasterio.open(reference, "w", **profile) as dst:
        dst.write(codes, 1)
    code = cli(["evaluate", "--scene", landsat5, "--sensor", "landsat5_dn", "--bands", ",".join(TM_BANDS),
                "--resolution", "10", "--reference", str(reference), "--reference-legend", LEGEND,
                "--model", str(model_dir), "-o", str(tmp_path / "eval"), "--quiet"])
    assert code == 0
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert list(report) == ["model"]  # one plain run: the U-Net has no fusion switch


def test_dpa_and_source_only_differ_and_repeat(small_config):
    dpa = adapt(dataclasses.replace(small_config(), output=None), progress=False).model.state_dict()
    again = adapt(dataclasses.replace(small_config(), output=None), progress=False).model.state_dict()
    base = small_config()
    source_only = adapt(dataclasses.replace(base, output=None, adapt=dataclasses.replace(base.adapt, method="source_only")),
                        progress=False).model.state_dict()
    name = "net.head.weight"
    assert torch.equal(dpa[name], again[name])
    assert not torch.equal(dpa[name], source_only[name])


def test_adaptation_can_start_from_a_source_only_model(small_config, tmp_path: Path):
    base = small_config(epochs=1, steps_per_epoch=1)
    warm = dataclasses.replace(base, adapt=dataclasses.replace(base.adapt, method="source_only"),
                               output=str(tmp_path / "warm"))
    adapt(warm, progress=False)
    start = load_model(tmp_path / "warm").state_dict()["net.head.weight"]
    cfg = dataclasses.replace(base, output=None, model=dataclasses.replace(base.model, init=str(tmp_path / "warm")))
    tuned = adapt(cfg, progress=False).model.state_dict()["net.head.weight"]
    assert tuned.shape == start.shape and not torch.equal(tuned, start)
    other = dataclasses.replace(cfg, classes="dynamic_world")
    with pytest.raises(LandSegError, match="maps only the classes it was trained on"):
        adapt(other, progress=False)


def test_landsegmenter_adapts_with_both_heads(small_config):
    base = small_config(epochs=1, steps_per_epoch=1)
    cfg = dataclasses.replace(base, output=None, model=ModelSection(architecture="landsegmenter", preset="tiny"))
    result = adapt(cfg, progress=False)
    assert result.history[0]["selected_fraction"] > 0 and np.isfinite(result.history[0]["loss"])


def test_scene_source_reads_labels_on_another_grid(landsat5: str, tmp_path: Path):
    with rasterio.open(landsat5) as src:
        profile = src.profile | {"count": 1, "dtype": "uint8", "nodata": 0}
        codes = np.where(src.read(4) > 40, 5, 6).astype(np.uint8)  # forest where NIR is bright, else water
    path = tmp_path / "labels.tif"
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(codes, 1)
    patches = ScenePatches([landsat5], str(path), LEGEND, sensor="landsat5_dn", bands=TM_BANDS,
                           resolution=10.0, patch=128)
    try:
        label = patches[0]["label"].numpy()
        nc = get_legend(LEGEND)
        assert label.shape == (128, 128)
        assert set(np.unique(label)) <= {nc.codes.index(5), nc.codes.index(6), 255}
        assert (label == nc.codes.index(5)).any() or (label == nc.codes.index(6)).any()
    finally:
        patches.close()


def test_cli_adapt_checks_its_inputs(train_store: Path, tmp_path: Path, capsys):
    out = tmp_path / "model"
    out.mkdir()
    (out / "keep.txt").write_text("user file")
    code = cli(["adapt", "--source", str(train_store), "--classes", LEGEND, "-o", str(out)])
    assert code == 2 and "no target scene" in capsys.readouterr().err
    code = cli(["adapt", "--source", str(tmp_path), "--target", "x.tif", "--classes", LEGEND, "-o", str(out)])
    assert code == 2 and "LAS store directory or a benchmark" in capsys.readouterr().err
    config = tmp_path / "adapt.yaml"
    config.write_text(f"source: {{store: {train_store}}}\ntarget: {{paths: [a.tif]}}\nclasses: {LEGEND}\n")
    code = cli(["adapt", "--config", str(config), "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert (out / "keep.txt").read_text() == "user file"
    config.write_text("trainer: {epochs: 0}\nsurprise: 1\n")
    with pytest.raises(LandSegError, match="unknown key 'surprise'"):
        load_adapt_config(config)


def test_overrides_reach_their_sections(train_store: Path):
    cfg = with_overrides(AdaptConfig(), source=str(train_store), target=["a.tif"], classes=LEGEND,
                         method="source_only", selection="class_balanced", epochs=3, architecture="landsegmenter")
    assert cfg.source.store == str(train_store.resolve()) and cfg.target.paths == ["a.tif"]
    assert (cfg.adapt.method, cfg.adapt.selection, cfg.trainer.epochs, cfg.model.architecture) == (
        "source_only", "class_balanced", 3, "landsegmenter")
    assert with_overrides(AdaptConfig(), source="fbp:/data/FBP").source.benchmark == "fbp:/data/FBP"


def test_the_example_config_is_valid():
    from landsegmenter.train.adapt_config import check_adapt_config

    cfg = load_adapt_config(Path(__file__).resolve().parents[2] / "configs" / "adapt-example.yaml")
    check_adapt_config(cfg)
    assert cfg.source.store.endswith("build/las-mini") and cfg.target.paths[0].endswith("landsat5_tm_7band_30m.tif")


def test_native_target_gsd_keeps_the_target_grid(small_config):
    base = small_config(epochs=1, steps_per_epoch=1)
    cfg = dataclasses.replace(base, output=None, target=dataclasses.replace(base.target, gsd="native"))
    from landsegmenter.train.adapt import Adaptation

    run = Adaptation(cfg, torch.device("cpu"))
    try:
        assert run.gsd is None and (run.target.scene.width, run.target.scene.height) == (287, 310)
    finally:
        run.close()


def test_a_reflectance_model_adapts_in_reflectance_and_says_so_otherwise(small_config, tmp_path: Path):
    base = small_config(epochs=1, steps_per_epoch=1)
    torch.manual_seed(0)
    init = build_model("tiny")
    init.normalisation = "reflectance"
    save_model(init, tmp_path / "init")
    cfg = dataclasses.replace(base, model=ModelSection(architecture="landsegmenter", init=str(tmp_path / "init")))
    with pytest.raises(LandSegError, match="set target.normalisation: reflectance") as info:
        adapt(cfg, progress=False)
    assert "\n" not in str(info.value)
    target = dataclasses.replace(cfg.target, sensor="landsat5_toa", normalisation="reflectance")
    adapt(dataclasses.replace(cfg, target=target), progress=False)
    assert read_model_config(cfg.output)["normalisation"] == "reflectance"


def test_reflectance_normalisation_is_the_global_one_for_source_and_target(train_store: Path, landsat5: str):
    target = TargetScene([landsat5], 64, sensor="landsat5_toa", bands=TM_BANDS, normalisation="reflectance")
    try:
        mean, std = reflectance_stats(target.wavelengths)
        assert np.allclose(target.mean, mean) and np.allclose(target.std, std)
    finally:
        target.close()
    source = las_source(train_store, ["dw"], ["train"], "reflectance").dataset
    assert source[0]["image"].shape[0] == 6  # normalised by wavelength: values of a few std at most
    assert float(source[0]["image"].abs().max()) < 20


def test_frozen_modules_keep_their_weights_and_statistics(small_config):
    base = small_config(epochs=1, steps_per_epoch=2)
    torch.manual_seed(0)
    model = ModelSection(architecture="landsegmenter", preset="tiny", freeze=["image_encoder.backbone"])
    cfg = dataclasses.replace(base, output=None, model=model)
    torch.manual_seed(0)
    before = build_model("tiny").state_dict()
    after = adapt(cfg, progress=False).model.state_dict()
    backbone = [k for k in before if k.startswith("image_encoder.backbone.")]
    assert backbone and all(torch.equal(before[k], after[k]) for k in backbone)  # BatchNorm statistics too
    q = "decoder.transformer.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(before[q], after[q])  # the rest is trained
    with pytest.raises(LandSegError, match="no module 'image_encoder.spine'"):
        adapt(dataclasses.replace(cfg, model=dataclasses.replace(model, freeze=["image_encoder.spine"])),
              progress=False)


def test_a_fixed_teacher_is_the_init_model_and_needs_one(small_config, tmp_path: Path):
    base = small_config(epochs=1, steps_per_epoch=1)
    warm = dataclasses.replace(base, adapt=dataclasses.replace(base.adapt, method="source_only"),
                               output=str(tmp_path / "warm"))
    adapt(warm, progress=False)
    teach = dataclasses.replace(base.adapt, teacher="init")
    with pytest.raises(LandSegError, match="teacher: init needs a model.init"):
        adapt(dataclasses.replace(base, output=None, adapt=teach), progress=False)
    cfg = dataclasses.replace(base, output=None, adapt=teach,
                              model=dataclasses.replace(base.model, init=str(tmp_path / "warm")))
    start = load_model(tmp_path / "warm").state_dict()["net.head.weight"]
    run = Adaptation(cfg, torch.device("cpu"))
    try:
        history = run.run(progress=False)
    finally:
        run.close()
    assert history[0]["selected_fraction"] > 0
    assert torch.equal(run.teacher.state_dict()["net.head.weight"], start)  # the teacher stays as it was
    assert not torch.equal(run.model.state_dict()["net.head.weight"], start)
