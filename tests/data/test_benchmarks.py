"""Benchmark loaders on small releases written in each dataset's published layout.

Fixtures are built from the real Sentinel-2 scene of the sample-data kit (see
``benchmark_fixtures.py``); every test decodes what the fixture wrote, with the
expected class indices computed here from the legend's code list.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchmark_fixtures as fx  # noqa: E402

from landsegmenter.data.benchmarks import (  # noqa: E402
    FLAIR1,
    Chesapeake,
    DeepGlobeLandCover,
    LoveDA,
    OpenEarthMap,
    Potsdam,
    Vaihingen,
    erode_boundaries,
    get_entry,
    list_benchmarks,
    open_benchmark,
)
from landsegmenter.data.benchmarks.boundary import disc_offsets  # noqa: E402
from landsegmenter.data.las_dataset import collate_las  # noqa: E402
from landsegmenter.errors import LandSegError  # noqa: E402
from landsegmenter.geo.sensors import get_sensor  # noqa: E402
from landsegmenter.taxonomy.legends import get_legend  # noqa: E402

RGB_UM = [0.665, 0.56, 0.49]
NIR_UM = 0.842


@pytest.fixture(scope="module")
def px(shared_data: Path) -> fx.RealPixels:
    return fx.RealPixels(shared_data)


def indices(codes: np.ndarray, class_codes: list[int]) -> np.ndarray:
    """Expected label: position of each code in ``class_codes``, everything else 255."""
    table = {code: i for i, code in enumerate(class_codes)}
    return np.vectorize(lambda c: table.get(int(c), 255))(codes).astype(np.int64)


def normalised(dn: np.ndarray, sensor: str, names: list[str]) -> np.ndarray:
    bands = get_sensor(sensor).select(names)
    mean = np.array([b.mean for b in bands], np.float32)[:, None, None]
    std = np.array([b.std for b in bands], np.float32)[:, None, None]
    return (dn.astype(np.float32) - mean) / std


def check_contract(sample: dict, channels: int, class_names: list[str]) -> None:
    image, label = sample["image"], sample["label"]
    assert image.dtype == torch.float32 and image.ndim == 3 and image.shape[0] == channels
    assert label.dtype == torch.int64 and label.shape == image.shape[1:]
    assert sample["wavelengths"].dtype == torch.float32 and sample["wavelengths"].shape == (channels,)
    assert sample["class_names"] == class_names and isinstance(sample["sample_id"], str)
    valid = label[label != 255]
    assert valid.numel() and int(valid.max()) < len(class_names)


# -- OpenEarthMap --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def oem(tmp_path_factory, px):
    return fx.build_openearthmap(tmp_path_factory.mktemp("oem"), px)


def test_openearthmap_splits_bands_and_codes(oem):
    release, expected = oem
    data = OpenEarthMap(release.parent, split="train")  # the archive's top folder is found
    assert [t.sample_id for t in data.tiles] == ["aachen_1", "al_qurnah_12"]
    assert data.band_names == ("red", "green", "blue") and data.wavelengths == pytest.approx(RGB_UM)
    legend = get_legend("openearthmap")
    assert data.class_names == list(legend.names) and len(data.class_names) == 8
    for sample in data:
        rgbn, codes = expected[sample["sample_id"]]
        check_contract(sample, 3, data.class_names)
        assert np.allclose(sample["image"].numpy(), normalised(rgbn[:3], "rgb", ["red", "green", "blue"]), atol=1e-6)
        assert np.array_equal(sample["label"].numpy(), indices(codes, list(legend.codes)))
        assert set(np.unique(codes)) == set(range(9))  # unknown (0) and every class were decoded
    assert len(OpenEarthMap(release, split="val")) == 1


def test_openearthmap_test_labels_are_withheld(oem):
    with pytest.raises(LandSegError, match=r"1 of 1 OpenEarthMap labels .*not public"):
        OpenEarthMap(oem[0], split="test")


def test_openearthmap_missing_xbd_images_error_or_skip(oem, tmp_path):
    release = tmp_path / "OpenEarthMap_wo_xBD"
    release.mkdir()
    (release / "train.txt").write_text("aachen_1.tif\nbata_explosion_1.tif\n")
    (release / "aachen").symlink_to(oem[0] / "aachen")
    with pytest.raises(LandSegError, match=r"1 of 2 OpenEarthMap images .*xBD"):
        OpenEarthMap(release, split="train")
    data = OpenEarthMap(release, split="train", skip_missing_images=True)
    assert len(data) == 1 and data.skipped == 1


def test_openearthmap_missing_split_file_and_unknown_code(oem, tmp_path):
    release = tmp_path / "OpenEarthMap_wo_xBD"
    (release / "aachen" / "labels").mkdir(parents=True)
    (release / "aachen" / "images").symlink_to(oem[0] / "aachen" / "images")
    (release / "train.txt").write_text("aachen_1.tif\n")
    with pytest.raises(LandSegError, match=r"split file .*val\.txt not found"):
        OpenEarthMap(release, split="val")
    codes = oem[1]["aachen_1"][1].copy()
    codes[10:12, 20:25] = 9  # not an OpenEarthMap code
    fx.write_tif(release / "aachen" / "labels" / "aachen_1.tif", codes)
    with pytest.raises(LandSegError, match=r"aachen_1\.tif: 10 pixels have codes .* \(values: 9\)"):
        OpenEarthMap(release, split="train")[0]


# -- LoveDA --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def loveda(tmp_path_factory, px):
    root = tmp_path_factory.mktemp("loveda")
    return root, fx.build_loveda(root, px)


def test_loveda_domains_no_data_and_numeric_order(loveda):
    root, expected = loveda
    data = LoveDA(root, split="train")
    assert [t.sample_id for t in data.tiles] == ["urban/2", "urban/1366", "rural/10"]
    legend = get_legend("loveda")
    for sample in data:
        rgbn, codes = expected[sample["sample_id"]]
        check_contract(sample, 3, list(legend.names))
        assert np.allclose(sample["image"].numpy(), normalised(rgbn[:3], "rgb", ["red", "green", "blue"]), atol=1e-6)
        label = sample["label"].numpy()
        assert np.array_equal(label, indices(codes, [1, 2, 3, 4, 5, 6, 7]))
        assert (label[codes == 0] == 255).all() and (label[codes == 1] == 0).all()  # background is class 0
    batch = collate_las([data[0], data[2]])  # the LAS training collate takes benchmark samples
    assert batch["image"].shape == (2, 3, 64, 64) and batch["subset"] == ["loveda", "loveda"]
    assert batch["split"] == ["train", "train"] and batch["sample_id"] == ["urban/2", "rural/10"]
    rural = LoveDA(root, split="val", domains=["rural"])
    assert [t.sample_id for t in rural.tiles] == ["rural/2522"]


def test_loveda_errors(loveda, tmp_path):
    root, _ = loveda
    with pytest.raises(LandSegError, match=r"test masks are not public"):
        LoveDA(root, split="test", domains="rural")
    with pytest.raises(LandSegError, match=r"Test/Urban/images_png not found"):
        LoveDA(root, split="test")
    with pytest.raises(LandSegError, match=r"unknown domain"):
        LoveDA(root, split="val", domains=["suburban"])
    with pytest.raises(LandSegError, match=r"unknown split 'validation'"):
        LoveDA(root, split="validation")
    with pytest.raises(LandSegError, match=r"does not exist"):
        LoveDA(tmp_path / "nowhere", split="val")


# -- FLAIR #1 ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def flair(tmp_path_factory, px):
    root = tmp_path_factory.mktemp("flair")
    return root, fx.build_flair(root, px)


def test_flair_13_classes_bands_and_elevation(flair):
    root, expected = flair
    data = FLAIR1(root, split="test", with_elevation=True)
    assert data.band_names == ("red", "green", "blue", "nir")
    assert data.wavelengths == pytest.approx([*RGB_UM, NIR_UM])
    assert data.class_names[-1] == "other" and len(data.class_names) == 13
    (sample,) = list(data)
    assert sample["sample_id"] == "D012_2019/Z1_UU/IMG_061001"
    image, codes = expected[sample["sample_id"]]
    check_contract(sample, 4, data.class_names)
    assert np.allclose(sample["image"].numpy(), normalised(image[:4], "rgbn", ["red", "green", "blue", "nir"]),
                       atol=1e-6)
    assert torch.equal(sample["elevation"], torch.from_numpy(image[4:5].astype(np.float32)))
    grouped = np.where(codes > 12, 13, codes)  # the official grouping of 13..19 into "other"
    assert np.array_equal(sample["label"].numpy(), grouped.astype(np.int64) - 1)
    assert set(np.unique(codes)) == set(range(1, 20))


def test_flair_19_classes_and_official_grouping(flair):
    root, expected = flair
    data = FLAIR1(root, split="test", num_classes=19)
    sample = data[0]
    codes = expected[sample["sample_id"]][1]
    assert len(data.class_names) == 19
    assert np.array_equal(sample["label"].numpy(), codes.astype(np.int64) - 1)
    evaluation = data.evaluation
    assert evaluation.scored_classes[-1] == "other" and evaluation.mean_over == tuple(range(12))
    scored = evaluation.to_scored(sample["label"].numpy())
    assert np.array_equal(scored, np.where(codes > 12, 13, codes) - 1)
    assert FLAIR1(root, split="test").evaluation.mean_over == tuple(range(12))


def test_flair_code_outside_the_nomenclature_is_counted(flair, tmp_path):
    root, expected = flair
    copy = tmp_path / "flair"
    copy.mkdir()
    (copy / "flair_1_aerial_test").symlink_to(root / "flair_1_aerial_test")
    codes = expected["D012_2019/Z1_UU/IMG_061001"][1].copy()
    codes[40:42, 40:42] = 25
    fx.write_tif(copy / "flair_1_labels_test" / "D012_2019" / "Z1_UU" / "msk" / "MSK_061001.tif", codes)
    for num_classes in (13, 19):
        with pytest.raises(LandSegError, match=r"MSK_061001\.tif: .*4 pixels have codes .*\(values: 25\)"):
            FLAIR1(copy, split="test", num_classes=num_classes)[0]


def test_flair_official_val_csv_and_band_selection(flair, tmp_path, px):
    root, _ = flair
    val = FLAIR1(root, split="val")
    assert [t.sample_id for t in val.tiles] == ["D014_2020/Z1_UU/IMG_004001"]
    train = FLAIR1(root, split="train", bands=["nir", "red"])
    assert [t.sample_id for t in train.tiles] == ["D004_2021/Z10_AU/IMG_000826", "D004_2021/Z10_AU/IMG_000827"]
    assert train.wavelengths == pytest.approx([NIR_UM, 0.665])
    sample = train[0]
    assert sample["image"].shape[0] == 2
    assert np.allclose(sample["image"][1].numpy(), FLAIR1(root, split="train")[0]["image"][0].numpy())
    bare = tmp_path / "flair_no_csv"
    fx.build_flair(bare, px, with_csv=False)
    assert len(FLAIR1(bare, split="train")) == 3
    with pytest.raises(LandSegError, match=r"no validation folder.*flair-1-paths-val\.csv"):
        FLAIR1(bare, split="val")
    with pytest.raises(LandSegError, match=r"flair1: unknown band 'swir16'"):
        FLAIR1(root, split="test", bands=["swir16"])


# -- ISPRS ---------------------------------------------------------------------------------


def test_erosion_by_hand():
    halves = np.zeros((6, 10), dtype=np.uint8)
    halves[:, 5:] = 1
    eroded = erode_boundaries(halves, radius=3)
    assert (eroded[:, 2:8] == 255).all()  # 3 px on each side of the boundary
    assert (eroded[:, :2] == 0).all() and (eroded[:, 8:] == 1).all()
    dot = np.zeros((9, 9), dtype=np.uint8)
    dot[4, 4] = 1
    assert (erode_boundaries(dot, radius=2) == 255).sum() == 13  # the disc of radius 2: 13 pixels
    assert len(disc_offsets(3)) == 28
    ignored = np.full((5, 5), 255, dtype=np.uint8)
    ignored[2, 2] = 3
    assert np.array_equal(erode_boundaries(ignored, radius=3), ignored)  # ignore pixels erode nothing


def test_erosion_matches_a_plain_loop(px):
    _, dw = px.crop(48)
    codes = fx.recode(dw, range(6))
    assert np.array_equal(erode_boundaries(codes, 3), fx.naive_erode(codes, 3))


@pytest.fixture(scope="module")
def potsdam(tmp_path_factory, px):
    from landsegmenter.data.benchmarks.potsdam import TEST_TILES, TRAIN_TILES

    root = tmp_path_factory.mktemp("potsdam")
    return root, fx.build_potsdam(root, px, [*TRAIN_TILES, *TEST_TILES], eroded=["2_13", "2_14"])


def test_potsdam_imagery_band_order(potsdam):
    root, expected = potsdam
    rgbn, codes = expected["top_potsdam_2_10"]
    cases = {"RGB": ("rgb", ["red", "green", "blue"], [0, 1, 2]),
             "IRRG": ("rgbn", ["nir", "red", "green"], [3, 0, 1]),
             "RGBIR": ("rgbn", ["red", "green", "blue", "nir"], [0, 1, 2, 3])}
    for imagery, (sensor, names, order) in cases.items():
        data = Potsdam(root, split="train", imagery=imagery)
        assert len(data) == 24 and data.band_names == tuple(names)
        assert data.wavelengths == pytest.approx([get_sensor(sensor).band(n).wavelength for n in names])
        sample = data[0]
        assert sample["sample_id"] == "top_potsdam_2_10"
        check_contract(sample, len(names), data.class_names)
        assert np.allclose(sample["image"].numpy(), normalised(rgbn[order], sensor, names), atol=1e-6)
        assert np.array_equal(sample["label"].numpy(), codes)  # full reference on train: every colour decoded
    assert set(np.unique(codes)) == set(range(6))


def test_potsdam_official_eroded_reference_and_computed_fallback(potsdam):
    root, expected = potsdam
    data = Potsdam(root, split="test")
    assert data.boundary == "eroded" and len(data) == 14
    by_id = {t.sample_id: t for t in data.tiles}
    assert by_id["top_potsdam_2_13"].label.parent.name == "5_Labels_all_noBoundary"
    assert by_id["top_potsdam_3_13"].label.parent.name == "5_Labels_all"  # no official eroded file
    for tile_id in ("top_potsdam_2_13", "top_potsdam_3_13"):
        index = [t.sample_id for t in data.tiles].index(tile_id)
        label = data[index]["label"].numpy()
        assert np.array_equal(label, fx.naive_erode(expected[tile_id][1], 3))
    assert data.evaluation.boundary_erosion_px == 3 and data.evaluation.mean_over == (0, 1, 2, 3, 4)
    full = Potsdam(root, split="test", boundary="full")
    assert np.array_equal(full[0]["label"].numpy(), expected["top_potsdam_2_13"][1])


def test_potsdam_patches_erode_with_context(potsdam):
    root, expected = potsdam
    data = Potsdam(root, split="test", boundary="eroded_computed", patch_size=40, with_elevation=True)
    assert len(data) == 14 * 4
    whole = fx.naive_erode(expected["top_potsdam_2_13"][1], 3)
    for k, (row, col) in enumerate([(0, 0), (0, 24), (24, 0), (24, 24)]):
        sample = data[k]
        assert sample["sample_id"] == f"top_potsdam_2_13@{row}_{col}"
        assert np.array_equal(sample["label"].numpy(), whole[row : row + 40, col : col + 40])
        assert sample["elevation"].shape == (1, 40, 40)


def test_potsdam_unknown_colour_is_counted(potsdam, tmp_path):
    root, expected = potsdam
    copy = tmp_path / "potsdam"
    for folder in root.iterdir():
        (copy / folder.name).mkdir(parents=True)
        for f in folder.iterdir():
            (copy / folder.name / f.name).symlink_to(f)
    rgbn, codes = expected["top_potsdam_2_10"]
    labels = fx.colorize(codes, fx.ISPRS_COLORS)
    labels[:, 5:7, 5:8] = np.array([128, 64, 0], np.uint8)[:, None, None]
    target = copy / "5_Labels_all" / "top_potsdam_2_10_label.tif"
    target.unlink()
    fx.write_tif(target, labels, photometric="RGB")
    with pytest.raises(LandSegError, match=r"top_potsdam_2_10_label\.tif: 6 pixels have colours .*\(128, 64, 0\) x6"):
        Potsdam(copy, split="train")[0]
    (copy / "4_Ortho_RGBIR" / "top_potsdam_7_12_RGBIR.tif").unlink()
    with pytest.raises(LandSegError, match=r"image top_potsdam_7_12_RGBIR\.tif .*not found"):
        Potsdam(copy, split="train", imagery="RGBIR")


@pytest.fixture(scope="module")
def vaihingen(tmp_path_factory, px):
    from landsegmenter.data.benchmarks.vaihingen import TEST_AREAS, TRAIN_AREAS

    root = tmp_path_factory.mktemp("vaihingen")
    return root, fx.build_vaihingen(root, px, TRAIN_AREAS, TEST_AREAS, without_eroded=[4])


def test_vaihingen_irrg_images_share_names_with_references(vaihingen):
    root, expected = vaihingen
    data = Vaihingen(root, split="train", with_elevation=True)
    assert len(data) == 16 and data.band_names == ("nir", "red", "green")
    assert data.wavelengths == pytest.approx([NIR_UM, 0.665, 0.56])
    sample = data[0]
    rgbn, codes = expected["area1"]
    assert data.tiles[0].image.parent.name == "top" and data.tiles[0].label.parent.name != "top"
    assert np.allclose(sample["image"].numpy(), normalised(rgbn[[3, 0, 1]], "rgbn", ["nir", "red", "green"]),
                       atol=1e-6)
    assert np.array_equal(sample["label"].numpy(), codes)
    assert float(sample["elevation"].min()) >= 250.0
    with pytest.raises(LandSegError, match=r"band\(s\) blue are not in these files; available: nir, red, green"):
        Vaihingen(root, split="train", bands=["red", "blue"])


def test_vaihingen_test_uses_eroded_references(vaihingen):
    root, expected = vaihingen
    data = Vaihingen(root, split="test")
    assert len(data) == 17
    for k in (0, 1):  # area2 has the official eroded file, area4 is eroded here
        tile = data.tiles[k]
        assert tile.label_is_eroded == (tile.sample_id == "area2")
        assert np.array_equal(data[k]["label"].numpy(), fx.naive_erode(expected[tile.sample_id][1], 3))


# -- DeepGlobe -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def deepglobe(tmp_path_factory, px):
    root = tmp_path_factory.mktemp("deepglobe")
    return root, fx.build_deepglobe_challenge(root, px)


def test_deepglobe_noisy_colour_masks(deepglobe):
    root, expected = deepglobe
    data = DeepGlobeLandCover(root, split="train")
    assert [t.sample_id for t in data.tiles] == ["100694", "102122"]
    for sample in data:
        rgbn, codes = expected[sample["sample_id"]]
        check_contract(sample, 3, data.class_names)
        assert np.array_equal(sample["label"].numpy(), indices(codes, [0, 1, 2, 3, 4, 5]))  # 6 unknown -> 255
        jpeg = normalised(rgbn[:3], "rgb", ["red", "green", "blue"])
        assert np.abs(sample["image"].numpy() - jpeg).mean() < 0.05  # lossy JPEG, same band order
    assert set(np.unique(codes)) == set(range(7))


def test_deepglobe_withheld_masks_and_unknown_colour(deepglobe, tmp_path):
    root, expected = deepglobe
    with pytest.raises(LandSegError, match=r"withheld the valid/test masks"):
        DeepGlobeLandCover(root, split="val")
    bad = tmp_path / "dg"
    (bad / "train").mkdir(parents=True)
    (bad / "train" / "100694_sat.jpg").symlink_to(root / "train" / "100694_sat.jpg")
    mask = fx.noisy_mask(expected["100694"][1])
    mask[:, 30:32, 30:34] = np.array([250, 3, 1], np.uint8)[:, None, None]  # red is not a class colour
    fx.write_image(bad / "train" / "100694_mask.png", mask)
    with pytest.raises(LandSegError, match=r"100694_mask\.png: 8 pixels have colours .*\(255, 0, 0\) x8"):
        DeepGlobeLandCover(bad, split="train")[0]


def test_deepglobe_resplit_layout(tmp_path, px):
    expected = fx.build_deepglobe_resplit(tmp_path, px)
    test = DeepGlobeLandCover(tmp_path, split="test")
    assert [t.sample_id for t in test.tiles] == ["855"]
    assert np.array_equal(test[0]["label"].numpy(), indices(expected["855"][1], [0, 1, 2, 3, 4, 5]))
    assert len(DeepGlobeLandCover(tmp_path, split="train")) == 2
    with pytest.raises(LandSegError, match=r"train and test only"):
        DeepGlobeLandCover(tmp_path, split="val")


# -- Chesapeake ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chesapeake(tmp_path_factory, px):
    return fx.build_chesapeake(tmp_path_factory.mktemp("chesapeake"), px)


def test_chesapeake_states_splits_and_7_classes(chesapeake):
    release, expected, _ = chesapeake
    data = Chesapeake(release.parent, split="test")
    assert [t.sample_id for t in data.tiles] == ["de/m_3807503_ne_18_1", "va/m_3707622_sw_18_1"]
    assert data.band_names == ("red", "green", "blue", "nir")
    assert data.wavelengths == pytest.approx([*RGB_UM, NIR_UM])
    for sample in data:
        rgbn, codes = expected[sample["sample_id"]]
        check_contract(sample, 4, data.class_names)
        assert np.allclose(sample["image"].numpy(), normalised(rgbn, "naip", ["red", "green", "blue", "nir"]),
                           atol=1e-6)
        label = sample["label"].numpy()
        assert np.array_equal(label, indices(codes, [1, 2, 3, 4, 5, 6, 7]))
        assert (label[(codes == 0) | (codes == 15)] == 255).all()
    scored = data.evaluation.to_scored(np.array([0, 1, 2, 3, 4, 5, 6, 255]))
    assert scored.tolist() == [0, 1, 2, 3, 3, 3, 255, 255]  # CVPR 2019: barren and impervious merged
    assert [t.sample_id for t in Chesapeake(release, split="train", states=["md"]).tiles] == ["md/m_3907633_nw_18_1"]
    with pytest.raises(LandSegError, match=r"no <state>_1m_<year>_extended-debuffered-val_tiles"):
        Chesapeake(release, split="val")
    with pytest.raises(LandSegError, match=r"unknown state"):
        Chesapeake(release, states=["dc"])


def test_chesapeake_13_classes_read_on_the_naip_grid(chesapeake):
    release, expected, baywide = chesapeake
    data = Chesapeake(release, split="test", num_classes=13)
    assert len(data.class_names) == 13
    de = data[0]["label"].numpy()
    assert np.array_equal(de, indices(baywide[10:74, 10:74], list(range(1, 14))))
    va = data[1]["label"].numpy()  # the tile runs 34 px past the 13-class raster: no data there
    assert (va[:, 30:] == 255).all()
    assert np.array_equal(va[:, :30], indices(baywide[110:174, 210:240], list(range(1, 14))))


def test_chesapeake_13_classes_need_the_conservancy_raster(tmp_path, px):
    release, _, _ = fx.build_chesapeake(tmp_path, px)
    (release / "Baywide_13Class_20132014.tif").unlink()
    with pytest.raises(LandSegError, match=r"Baywide_13Class_20132014\.tif"):
        Chesapeake(release, num_classes=13)


# -- registry ------------------------------------------------------------------------------


def test_registry_names_specs_and_variants(loveda, flair, tmp_path):
    names = list_benchmarks()
    assert {"openearthmap", "loveda", "flair1", "potsdam", "vaihingen", "deepglobe", "chesapeake"} <= set(names)
    assert get_entry("FLAIR-1").name == "flair1" and get_entry("OEM").name == "openearthmap"
    root, _ = loveda
    urban = open_benchmark(f"loveda_urban:{root}", split="val")
    assert isinstance(urban, LoveDA) and urban.domains == ("urban",)
    both = open_benchmark(f"LoveDA:{root}", split="val", domains=("urban", "rural"))
    assert len(both) == 2
    full = open_benchmark(f"flair1_19:{flair[0]}")
    assert full.split == "test" and len(full.class_names) == 19
    with pytest.raises(LandSegError, match=r"unknown benchmark 'landcoverai'; known benchmarks: openearthmap"):
        open_benchmark(f"landcoverai:{root}")
    with pytest.raises(LandSegError, match=r"must be given as NAME:PATH"):
        open_benchmark(str(root))
    with pytest.raises(LandSegError, match=r"does not exist"):
        open_benchmark(f"potsdam:{tmp_path / 'missing'}")


def test_every_registered_band_has_a_registry_wavelength():
    for name in list_benchmarks():
        dataset = get_entry(name).dataset
        bands = dataset.layout.select()
        assert len(bands.wavelengths) == len(dataset.layout.file_bands) and all(w > 0.4 for w in bands.wavelengths)
        assert dataset.ignore_index == 255 and "test" in dataset.splits


# -- `landseg evaluate --data NAME:PATH` on every fixture -----------------------------------


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory) -> Path:
    from landsegmenter.model.io import save_model
    from landsegmenter.model.presets import build_model

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny-model")
    save_model(build_model("tiny"), path)
    return path


@pytest.mark.parametrize(
    "fixture,name,split",
    [("oem", "openearthmap", "val"), ("loveda", "loveda", "val"), ("flair", "flair1", "test"),
     ("potsdam", "potsdam", "test"), ("vaihingen", "vaihingen", "test"), ("deepglobe", "deepglobe", "train"),
     ("chesapeake", "chesapeake", "test")],
)
def test_evaluate_cli_on_each_benchmark(request, tiny_model_dir, tmp_path, fixture, name, split):
    import json

    from landsegmenter.cli import main

    root = request.getfixturevalue(fixture)[0]
    out = tmp_path / "report"
    args = ["evaluate", "--model", str(tiny_model_dir), "--data", f"{name}:{root}", "--split", split,
            "--limit", "2", "-o", str(out), "--quiet"]
    assert main(args) == 0
    reports = json.loads((out / "report.json").read_text())
    assert set(reports) == {"fusion_off", "fusion_on"}
    dataset = open_benchmark(f"{name}:{root}", split)
    assert reports["fusion_on"]["class_names"] == list(dataset.evaluation.scored_classes)
    assert sum(map(sum, reports["fusion_on"]["matrix"])) > 0
