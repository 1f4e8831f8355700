"""Five-Billion-Pixels and GID on small releases written in their published layouts.

Fixtures (``benchmark_fixtures.build_five_billion_pixels`` / ``build_gid``) hold
crops of the real Sentinel-2 scene as Gaofen-2 band stacks (16-bit B, G, R,
NIR; CMYK-tagged 8-bit NIR, R, G, B) and the real Dynamic World labels recoded
into each dataset's index codes or published colours, with a strip holding
every code. Expected class indices are computed here from the published code
tables, not from the loaders' legends.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchmark_fixtures as fx  # noqa: E402

from landsegmenter.data.benchmarks.five_billion_pixels import TEST_SCENES, FiveBillionPixels  # noqa: E402
from landsegmenter.data.benchmarks.gid import GID5, GID15  # noqa: E402
from landsegmenter.data.benchmarks.io import find_folder, read_raster  # noqa: E402
from landsegmenter.data.benchmarks.registry import get_entry, list_benchmarks, open_benchmark  # noqa: E402
from landsegmenter.errors import LandSegError  # noqa: E402
from landsegmenter.geo.sensors import get_sensor  # noqa: E402

BGRN = ["blue", "green", "red", "nir"]
GF2_UM = [0.485, 0.555, 0.66, 0.83]  # B1..B4 centres of the gaofen2_pms registry entry
FBP_NAMES_BY_INDEX = [  # the release readme's "correspondence of indexes and categories", 1..24
    "industrial area", "paddy field", "irrigated field", "dry cropland", "garden land", "arbor forest",
    "shrub forest", "park", "natural meadow", "artificial meadow", "river", "urban residential", "lake", "pond",
    "fish pond", "snow", "bareland", "rural residential", "stadium", "square", "road", "overpass",
    "railway station", "airport",
]
GID5_SET, GID15_SET = fx.GID_SETS

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")  # fixtures have no CRS


@pytest.fixture(scope="module")
def px(shared_data: Path) -> fx.RealPixels:
    return fx.RealPixels(shared_data)


def shifted(codes: np.ndarray) -> np.ndarray:
    """Published index codes 1..K -> class indices 0..K-1, code 0 -> 255."""
    codes = codes.astype(np.int64)
    return np.where(codes == 0, 255, codes - 1)


def gf2_normalised(dn: np.ndarray, names: list[str]) -> np.ndarray:
    """8-bit DN ``[C, H, W]`` of bands ``names`` normalised with the gaofen2_pms statistics."""
    bands = get_sensor("gaofen2_pms").select(names)
    mean = np.array([b.mean for b in bands], np.float32)[:, None, None]
    std = np.array([b.std for b in bands], np.float32)[:, None, None]
    return (dn.astype(np.float32) - mean) / std


def stack(rgbn: np.ndarray, names: list[str]) -> np.ndarray:
    """The bands ``names`` of an R, G, B, NIR array, in that order."""
    return rgbn[[["red", "green", "blue", "nir"].index(n) for n in names]]


# -- Five-Billion-Pixels ------------------------------------------------------------------


@pytest.fixture(scope="module")
def fbp(tmp_path_factory, px):
    root = tmp_path_factory.mktemp("fbp")
    return root, fx.build_five_billion_pixels(root, px, [*fx.FBP_TRAIN_SCENES, *TEST_SCENES])


def test_fbp_readme_test_scenes_are_the_published_thirty():
    assert len(TEST_SCENES) == 30 and len(set(TEST_SCENES)) == 30
    assert TEST_SCENES[0] == "GF2_PMS1__L1A0001064454-MSS1" and TEST_SCENES[-1] == "GF2_PMS2__L1A0001821754-MSS2"
    assert sum(s.startswith("GF2_PMS1") for s in TEST_SCENES) == 13


def test_fbp_16bit_and_8bit_give_the_same_named_bands(fbp):
    root, expected = fbp
    scene = fx.FBP_TRAIN_SCENES[0]
    rgbn = expected[scene][0]
    for imagery in ("16bit", "8bit"):
        data = FiveBillionPixels(root, split="train", imagery=imagery, bands=BGRN)
        assert data.band_names == ("B1", "B2", "B3", "B4") and data.wavelengths == pytest.approx(GF2_UM)
        sample = data[0]
        assert sample["sample_id"] == scene and sample["subset"] == "five_billion_pixels"
        assert np.allclose(sample["image"].numpy(), gf2_normalised(stack(rgbn, BGRN), BGRN), atol=1e-5)
    eight = FiveBillionPixels(root, split="train", imagery="8bit")  # file order: NIR, R, G, B
    assert eight.band_names == ("B4", "B3", "B2", "B1")
    nrgb = ["nir", "red", "green", "blue"]
    assert np.allclose(eight[0]["image"].numpy(), gf2_normalised(stack(rgbn, nrgb), nrgb), atol=1e-5)
    sixteen = FiveBillionPixels(root, split="train", bands=["nir", "red"])
    assert np.allclose(sixteen[0]["image"].numpy(), gf2_normalised(stack(rgbn, ["nir", "red"]), ["nir", "red"]),
                       atol=1e-5)


def test_fbp_cmyk_tiffs_are_read_as_stored_bands(fbp):
    root, expected = fbp
    scene = fx.FBP_TRAIN_SCENES[1]
    path = root / "Image__8bit_NirRGB" / f"{scene}.tiff"
    r, g, b, n = expected[scene][0]
    with rasterio.open(path) as src:  # plain GDAL converts CMYK to RGBA: the NIR band is lost
        converted = src.read()
    assert not np.array_equal(converted, np.stack([n, r, g, b]))
    assert np.array_equal(read_raster(path), np.stack([n, r, g, b]))
    assert np.array_equal(read_raster(path, [4, 1]), np.stack([b, n]))
    sixteen = read_raster(root / "Image_16bit_BGRNir" / f"{scene}.tiff")
    assert sixteen.dtype == np.uint16 and np.array_equal(sixteen, np.stack([b, g, r, n]).astype(np.uint16) * 4)


def test_fbp_every_index_code_decodes_to_its_readme_class(fbp):
    root, expected = fbp
    data = FiveBillionPixels(root, split="train")
    assert data.class_names == FBP_NAMES_BY_INDEX
    for sample in data:
        codes = expected[sample["sample_id"]][1]
        assert set(np.unique(codes)) == set(range(25))  # unlabeled and all 24 classes were written
        label = sample["label"].numpy()
        assert label.dtype == np.int64 and np.array_equal(label, shifted(codes))
        assert (label[codes == 0] == 255).all() and (label[codes == 24] == 23).all()
        assert sample["image"].shape == (4, *fx.GAOFEN_SHAPE) and sample["image"].dtype == torch.float32


def test_fbp_splits_and_scene_lists(fbp):
    root, _ = fbp
    assert [t.sample_id for t in FiveBillionPixels(root, split="train").tiles] == sorted(fx.FBP_TRAIN_SCENES)
    test = FiveBillionPixels(root)  # the default split is test
    assert test.split == "test" and [t.sample_id for t in test.tiles] == sorted(TEST_SCENES)
    assert len(FiveBillionPixels(root, split="ALL")) == 32
    chosen = FiveBillionPixels(root, split="all", scenes=["GF2_PMS2__L1A0001821754-MSS2.tif", fx.FBP_TRAIN_SCENES[0]])
    assert [t.sample_id for t in chosen.tiles] == ["GF2_PMS2__L1A0001821754-MSS2", fx.FBP_TRAIN_SCENES[0]]
    with pytest.raises(LandSegError, match=r"1 of 1 scene\(s\) not found in the test split .*GF2_PMS1__L1A0000564539"):
        FiveBillionPixels(root, split="test", scenes=[fx.FBP_TRAIN_SCENES[0]])
    with pytest.raises(LandSegError, match=r"unknown split 'val'; choose one of test, train, all"):
        FiveBillionPixels(root, split="val")
    with pytest.raises(LandSegError, match=r"unknown imagery '12bit'; choose one of 16bit, 8bit"):
        FiveBillionPixels(root, imagery="12bit")


def test_fbp_missing_test_scenes_are_named(tmp_path, px):
    fx.build_five_billion_pixels(tmp_path, px, [*fx.FBP_TRAIN_SCENES, TEST_SCENES[3]])
    with pytest.raises(LandSegError, match=r"29 of the 30 test scenes are missing .*\(e\.g\. "
                                           r"GF2_PMS1__L1A0001064454-MSS1\); pass scenes="):
        FiveBillionPixels(tmp_path)
    assert len(FiveBillionPixels(tmp_path, scenes=[TEST_SCENES[3]])) == 1


def test_fbp_tif_suffix_spelling_and_archive_folder(tmp_path, px):
    release = tmp_path / "Five-Billion-Pixels"
    expected = fx.build_five_billion_pixels(release, px, fx.FBP_TRAIN_SCENES, suffix=".tif",
                                            eight_bit="image_8bit_nirrgb")
    data = FiveBillionPixels(tmp_path, split="train", imagery="8-bit", bands=BGRN)  # root: the archive's parent
    assert [t.image.name for t in data.tiles] == [f"{s}.tif" for s in sorted(fx.FBP_TRAIN_SCENES)]
    for sample in data:
        rgbn, codes = expected[sample["sample_id"]]
        assert np.allclose(sample["image"].numpy(), gf2_normalised(stack(rgbn, BGRN), BGRN), atol=1e-5)
        assert np.array_equal(sample["label"].numpy(), shifted(codes))
    assert find_folder(release, "Image__8bit_NirRGB") == release / "image_8bit_nirrgb"


def test_fbp_colour_labels_are_read_without_index_labels(tmp_path, px):
    expected = fx.build_five_billion_pixels(tmp_path, px, fx.FBP_TRAIN_SCENES, index_labels=False)
    data = FiveBillionPixels(tmp_path, split="train")
    assert all(t.label.parent.name == "Annotation__color" for t in data.tiles)
    for sample in data:
        assert np.array_equal(sample["label"].numpy(), shifted(expected[sample["sample_id"]][1]))
    shutil.rmtree(tmp_path / "Annotation__color")
    with pytest.raises(LandSegError, match=r"neither Annotation__index nor Annotation__color found"):
        FiveBillionPixels(tmp_path, split="train")


def test_fbp_broken_layouts_raise_one_line_errors(tmp_path, px):
    expected = fx.build_five_billion_pixels(tmp_path, px, fx.FBP_TRAIN_SCENES)
    first, second = sorted(fx.FBP_TRAIN_SCENES)
    codes = expected[first][1].copy()
    codes[40:42, 10:15] = 25  # not a Five-Billion-Pixels index
    fx.write_image(tmp_path / "Annotation__index" / f"{first}_24label.png", codes)
    with pytest.raises(LandSegError, match=rf"{first}_24label\.png: 10 pixels have codes .*\(values: 25\)"):
        FiveBillionPixels(tmp_path, split="train")[0]
    fx.write_image(tmp_path / "Annotation__index" / f"{first}_24label.png", codes[:70])
    with pytest.raises(LandSegError, match=rf"{first}_24label\.png: label is 80x70 px, image .*{first}\.tiff is 80x72"):
        FiveBillionPixels(tmp_path, split="train")
    (tmp_path / "Annotation__index" / f"{second}_24label.png").unlink()
    with pytest.raises(LandSegError, match=rf"1 of 2 Five-Billion-Pixels train labels are missing .*{second}"):
        FiveBillionPixels(tmp_path, split="train")
    shutil.rmtree(tmp_path / "Image_16bit_BGRNir")
    with pytest.raises(LandSegError, match=r"no Image_16bit_BGRNir folder in .* expected the release layout"):
        FiveBillionPixels(tmp_path, split="train")


def test_fbp_patches_cover_the_scene(fbp):
    root, expected = fbp
    data = FiveBillionPixels(root, split="train", patch_size=32)
    assert len(data) == 2 * 9  # 72 x 80 px: rows 0, 32, 40 x columns 0, 32, 48
    sample = data[5]
    scene = sorted(fx.FBP_TRAIN_SCENES)[0]
    assert sample["sample_id"] == f"{scene}@32_48" and sample["image"].shape == (4, 32, 32)
    rgbn, codes = expected[scene]
    assert np.array_equal(sample["label"].numpy(), shifted(codes[32:64, 48:80]))
    assert np.allclose(sample["image"].numpy(), gf2_normalised(stack(rgbn, BGRN), BGRN)[:, 32:64, 48:80], atol=1e-5)


def test_fbp_registry_names(fbp):
    root, expected = fbp
    data = open_benchmark(f"five_billion_pixels:{root}", split="train")
    assert isinstance(data, FiveBillionPixels) and data.imagery == "16bit" and len(data) == 2
    eight = open_benchmark(f"FBP-8bit:{root}", split="train")
    assert eight.imagery == "8bit" and eight.band_names == ("B4", "B3", "B2", "B1")
    assert get_entry("5bp").name == "five_billion_pixels" and get_entry("fbp").name == "five_billion_pixels"
    assert data.evaluation.metrics == ("OA", "F1", "mIoU") and data.evaluation.mean_over == tuple(range(24))
    assert data.evaluation.to_scored(np.array([0, 23, 255])).tolist() == [0, 23, 255]


# -- GID ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gid(tmp_path_factory, px):
    root = tmp_path_factory.mktemp("gid") / "GID"
    return root, fx.build_gid(root, px)


def test_gid5_every_colour_band_order_and_cmyk(gid):
    root, expected = gid
    data = open_benchmark(f"gid5:{root}")  # root: the folder holding the set
    assert isinstance(data, GID5) and data.split == "test" and len(data) == 3
    assert data.class_names == ["built-up", "farmland", "forest", "meadow", "water"]
    assert data.band_names == ("B4", "B3", "B2", "B1") and data.wavelengths == pytest.approx(GF2_UM[::-1])
    assert all(t.image.parent.name == "image_NirRGB" for t in data.tiles)
    for sample in data:
        rgbn, codes = expected[GID5_SET][sample["sample_id"]]
        assert set(np.unique(codes)) == set(range(6))
        assert np.array_equal(sample["label"].numpy(), shifted(codes))
        nrgb = ["nir", "red", "green", "blue"]
        assert np.allclose(sample["image"].numpy(), gf2_normalised(stack(rgbn, nrgb), nrgb), atol=1e-5)
    with rasterio.open(data.tiles[0].image) as src:  # the fixture really is CMYK-tagged
        assert src.tags(ns="IMAGE_STRUCTURE").get("SOURCE_COLOR_SPACE") == "CMYK"


def test_gid5_set_folder_rgb_imagery_and_scene_list(gid):
    root, expected = gid
    data = GID5(root / GID5_SET, split="all", imagery="RGB", bands=["blue", "red"])
    assert [t.image.parent.name for t in data.tiles] == ["image_RGB"] * 3
    scene = data.tiles[1].sample_id
    rgbn = expected[GID5_SET][scene][0]
    assert np.allclose(data[1]["image"].numpy(), gf2_normalised(stack(rgbn, ["blue", "red"]), ["blue", "red"]),
                       atol=1e-5)
    rgb = open_benchmark(f"gid5_rgb:{root}")
    assert rgb.imagery == "rgb" and rgb.band_names == ("B3", "B2", "B1")
    one = GID5(root, scenes=["GF2_PMS2__L1A0001119060-MSS2.tif"])
    assert [t.sample_id for t in one.tiles] == ["GF2_PMS2__L1A0001119060-MSS2"]
    with pytest.raises(LandSegError, match=r"1 of 1 scene\(s\) not found in .*image_NirRGB \(e\.g\. GF2_nope\)"):
        GID5(root, scenes=["GF2_nope"])
    with pytest.raises(LandSegError, match=r"band\(s\) nir are not in these files"):
        GID5(root, imagery="RGB", bands=["nir"])


def test_gid15_every_colour_with_a_plain_nirrgb_tiff(gid):
    root, expected = gid
    data = open_benchmark(f"GID-15:{root}", split="all")
    assert isinstance(data, GID15) and len(data) == 2 and len(data.class_names) == 15
    assert data.class_names[0] == "industrial land" and data.class_names[-1] == "pond"
    for sample in data:
        rgbn, codes = expected[GID15_SET][sample["sample_id"]]
        assert set(np.unique(codes)) == set(range(16))
        assert np.array_equal(sample["label"].numpy(), shifted(codes))
        assert np.allclose(sample["image"].numpy(), gf2_normalised(stack(rgbn, BGRN), BGRN)[::-1], atol=1e-5)
    with rasterio.open(data.tiles[0].image) as src:
        assert src.tags(ns="IMAGE_STRUCTURE").get("SOURCE_COLOR_SPACE") is None
    assert data.evaluation.metrics == ("OA", "Kappa", "mIoU") and len(data.evaluation.scored_classes) == 15


def test_gid_patches(gid):
    root, expected = gid
    data = GID15(root, patch_size=40)
    assert len(data) == 2 * 4
    sample = data[3]
    scene = data.tiles[0].sample_id
    assert sample["sample_id"] == f"{scene}@32_40"
    assert np.array_equal(sample["label"].numpy(), shifted(expected[GID15_SET][scene][1][32:72, 40:80]))


def test_gid_broken_layouts_raise_one_line_errors(tmp_path, px):
    expected = fx.build_gid(tmp_path, px)
    labels = tmp_path / GID5_SET / "label_5classes"
    first, second, _ = sorted(expected[GID5_SET])
    colors = fx.GID_SETS[GID5_SET][1]
    rgb = fx.colorize(expected[GID5_SET][first][1], colors)
    rgb[:, 50:52, 7:10] = np.array([1, 2, 3], np.uint8)[:, None, None]
    fx.write_tif(labels / f"{first}_label.tif", rgb, photometric="RGB")
    with pytest.raises(LandSegError, match=rf"{first}_label\.tif: 6 pixels have colours that are not classes "
                                           r"\(\(1, 2, 3\) x6\)"):
        GID5(tmp_path)[0]
    fx.write_tif(labels / f"{first}_label.tif", rgb[:, :, :79], photometric="RGB")
    with pytest.raises(LandSegError, match=rf"{first}_label\.tif: label is 79x72 px, image .* is 80x72 px"):
        GID5(tmp_path)
    (labels / f"{second}_label.tif").unlink()
    with pytest.raises(LandSegError, match=rf"1 of 3 gid5 labels are missing \(e\.g\. .*{second}_label\.tif\)"):
        GID5(tmp_path)
    with pytest.raises(LandSegError, match=r"gid5: neither .* nor a 'Large-scale Classification_5classes' folder "
                                           r"in it holds label_5classes/"):
        GID5(tmp_path / GID15_SET)
    shutil.rmtree(tmp_path / GID15_SET / "image_RGB")
    with pytest.raises(LandSegError, match=r"gid15: folder .*image_RGB not found"):
        GID15(tmp_path, imagery="RGB")
    with pytest.raises(LandSegError, match=r"unknown imagery 'IRRG'; choose NirRGB or RGB"):
        GID15(tmp_path, imagery="IRRG")


def test_gid_accepts_mirror_spellings_and_tiff(tmp_path, px):
    expected = fx.build_gid(tmp_path / "raw", px)
    mirror = tmp_path / "mirror"
    shutil.copytree(tmp_path / "raw" / GID5_SET, mirror / "Large-scale_Classification_5classes")
    scene = sorted(expected[GID5_SET])[0]
    nir_dir = mirror / "Large-scale_Classification_5classes" / "image_NirRGB"
    (nir_dir / f"{scene}.tif").rename(nir_dir / f"{scene}.tiff")
    data = GID5(mirror)
    assert data.tiles[0].image.name == f"{scene}.tiff"
    assert np.array_equal(data[0]["label"].numpy(), shifted(expected[GID5_SET][scene][1]))
    (nir_dir / f"{scene}.tif").write_bytes((nir_dir / f"{scene}.tiff").read_bytes())
    with pytest.raises(LandSegError, match=rf"both {scene}\.tif and {scene}\.tiff exist"):
        GID5(mirror)


def test_registry_lists_the_gaofen_benchmarks():
    names = set(list_benchmarks())
    assert {"five_billion_pixels", "five_billion_pixels_8bit", "gid5", "gid5_rgb", "gid15", "gid15_rgb"} <= names
    assert get_entry("gid").name == "gid5" and get_entry("gid_5").name == "gid5" and get_entry("gid_15").name == "gid15"
    for name in ("five_billion_pixels", "gid5", "gid15"):
        layout = get_entry(name).dataset.layout
        assert layout.sensor == "gaofen2_pms" and layout.select().wavelengths[0] > 0.4


# -- `landseg evaluate --data NAME:PATH` ----------------------------------------------------


@pytest.mark.parametrize("fixture,spec,split", [("fbp", "five_billion_pixels", "train"), ("gid", "gid5", "test")])
def test_evaluate_cli_reads_the_gaofen_benchmarks(request, tmp_path, fixture, spec, split):
    import json

    from landsegmenter.cli import main
    from landsegmenter.model.io import save_model
    from landsegmenter.model.presets import build_model

    torch.manual_seed(0)
    save_model(build_model("tiny"), tmp_path / "model")
    root = request.getfixturevalue(fixture)[0]
    out = tmp_path / "report"
    args = ["evaluate", "--model", str(tmp_path / "model"), "--data", f"{spec}:{root}", "--split", split,
            "--limit", "2", "-o", str(out), "--quiet"]
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())["fusion_on"]
    assert report["class_names"] == list(open_benchmark(f"{spec}:{root}", split).evaluation.scored_classes)
    assert sum(map(sum, report["matrix"])) > 0
