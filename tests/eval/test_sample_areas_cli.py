"""`landseg sample` -> label -> `landseg areas` on a real map of the Sentinel-2 scene.

The reference labels come from the scene's Dynamic World label raster, read at each point,
so the estimates can be checked against what the labels say.
"""
import csv
import json

import fiona
import numpy as np
import pytest
import rasterio
from rasterio.warp import transform as transform_xy

from landsegmenter import map_scene
from landsegmenter.cli import main
from landsegmenter.eval.sampling import Strata, allocate
from landsegmenter.taxonomy.legends import normalize_name

CLASSES = ["water", "forest", "cropland", "built-up", "grassland"]
# Dynamic World classes the map's legend lacks, as a labeller would call them here
DW_OUTSIDE_LEGEND = {"flooded vegetation": "water", "bare": "built-up", "snow and ice": "water"}


@pytest.fixture(scope="module")
def class_map(s2_scene, tmp_path_factory):
    out = tmp_path_factory.mktemp("areas") / "run"
    return map_scene(s2_scene, CLASSES, out, model="spectral-rule", progress=False).classes


@pytest.fixture(scope="module")
def sample(class_map, tmp_path_factory):
    path = tmp_path_factory.mktemp("sample") / "points.gpkg"
    assert main(["sample", str(class_map), "-o", str(path), "--n", "300", "--seed", "7"]) == 0
    return path


def _features(path):
    with fiona.open(path) as src:
        return src.crs_wkt, src.schema, [(dict(f.properties), tuple(f.geometry.coordinates)) for f in src]


def _map_values(class_map, coords):
    with rasterio.open(class_map) as src:
        return [int(v[0]) for v in src.sample(coords)]


def _dynamic_world_names(shared_data, coords):
    folder = shared_data / "s2_t33uuu_20170216"
    legend = json.loads((folder / "dynamic_world_label.legend.json").read_text())
    names = {c["value"]: c["name"] for c in legend["classes"]}
    with rasterio.open(folder / "dynamic_world_label.tif") as src:
        return [names[int(v[0])] for v in src.sample(coords)]


def _write_labelled(sample_path, out_path, labels, *, to_crs=None, keep=None):
    wkt, schema, features = _features(sample_path)
    crs_wkt = rasterio.crs.CRS.from_user_input(to_crs).to_wkt() if to_crs else wkt
    with fiona.open(out_path, "w", driver="GPKG", schema=schema, crs_wkt=crs_wkt) as dst:
        for props, (x, y) in features:
            if keep is not None and not keep(props):
                continue
            if to_crs:
                (x,), (y,) = transform_xy(rasterio.crs.CRS.from_wkt(wkt), to_crs, [x], [y])
            props["reference"] = labels.get(props["id"], "")
            dst.write({"geometry": {"type": "Point", "coordinates": (x, y)}, "properties": props})
    return out_path


@pytest.fixture(scope="module")
def dw_labels(sample, shared_data):
    """Reference label per point id: Dynamic World names, some as synonyms, some as class values."""
    _, _, features = _features(sample)
    coords = [c for _, c in features]
    dw = _dynamic_world_names(shared_data, coords)
    labels = {}
    for n, ((props, _), name) in enumerate(zip(features, dw)):
        label = DW_OUTSIDE_LEGEND.get(normalize_name(name), name)  # "trees", "crops", "built", "grass": registry synonyms
        if n % 5 == 0 and label in CLASSES:
            label = str(CLASSES.index(label))  # by class value
        labels[props["id"]] = label
    return labels


def test_sample_is_a_stratified_random_sample_of_the_map(class_map, sample):
    wkt, schema, features = _features(sample)
    assert set(schema["properties"]) == {"id", "map_class", "map_value", "stratum_weight", "stratum_points",
                                         "reference"}
    with rasterio.open(class_map) as src:
        assert rasterio.crs.CRS.from_wkt(wkt) == src.crs
        pixels = np.bincount(src.read(1).ravel(), minlength=256)[: len(CLASSES)]
    assert sorted(p["id"] for p, _ in features) == list(range(1, 301))
    values = _map_values(class_map, [c for _, c in features])
    assert values == [p["map_value"] for p, _ in features]
    assert [CLASSES[v] for v in values] == [p["map_class"] for p, _ in features]
    assert all(p["reference"] in ("", None) for p, _ in features)
    expected = allocate(300, Strata(CLASSES, pixels, None), "proportional")
    np.testing.assert_array_equal(np.bincount(values, minlength=len(CLASSES)), expected)
    assert expected.min() >= 50  # the default minimum per class
    weights = {p["map_class"]: p["stratum_weight"] for p, _ in features}
    assert weights["cropland"] == pytest.approx(pixels[2] / pixels.sum())
    assert len({c for _, c in features}) == 300  # no pixel drawn twice


def test_csv_twin_and_seed_make_the_sample_reproducible(class_map, sample, tmp_path):
    twin = sample.with_suffix(".csv")
    rows = list(csv.DictReader(twin.open()))
    _, _, features = _features(sample)
    assert [(int(r["id"]), float(r["x"]), float(r["y"])) for r in rows] == [(p["id"], *c) for p, c in features]
    again = tmp_path / "again.gpkg"
    assert main(["sample", str(class_map), "-o", str(again), "--n", "300", "--seed", "7"]) == 0
    assert again.with_suffix(".csv").read_bytes() == twin.read_bytes()
    other = tmp_path / "other.gpkg"
    assert main(["sample", str(class_map), "-o", str(other), "--n", "300", "--seed", "8"]) == 0
    assert other.with_suffix(".csv").read_bytes() != twin.read_bytes()
    assert main(["sample", str(class_map), "-o", str(other), "--n", "300"]) == 2  # exists, no --overwrite


def test_allocations():
    strata = Strata(["a", "b", "c"], np.array([9000, 900, 3]), np.array([90.0, 50.0, 80.0]))
    np.testing.assert_array_equal(allocate(100, strata, "proportional", 0), [91, 9, 0])
    # 10 each first (c has only 3 pixels), the other 77 in proportion 9000 : 900
    np.testing.assert_array_equal(allocate(100, strata, "proportional", 10), [80, 17, 3])
    equal = allocate(60, strata, "equal", 0)
    assert equal.sum() == 60 and equal[2] == 3 and abs(int(equal[0]) - int(equal[1])) <= 1
    neyman = allocate(100, strata, "neyman", 0)  # W * sqrt(U (1 - U)): 0.9*0.3 vs 0.09*0.5
    assert neyman.sum() == 100 and neyman[1] > allocate(100, strata, "proportional", 0)[1]
    with pytest.raises(Exception, match="more than --n"):
        allocate(20, strata, "equal", 10)


def test_sample_label_areas_loop(class_map, sample, dw_labels, tmp_path, capsys):
    labelled = _write_labelled(sample, tmp_path / "labelled.gpkg", dw_labels)
    out = tmp_path / "report"
    assert main(["areas", str(class_map), "--reference-sample", str(labelled), "-o", str(out), "--quiet"]) == 0
    report = json.loads((out / "areas.json").read_text())
    assert report["area_unit"] == "ha" and report["sample_points"] == 300
    with rasterio.open(class_map) as src:
        pixels = np.bincount(src.read(1).ravel(), minlength=256)[: len(CLASSES)]
    total_ha = pixels.sum() * 100 / 10_000  # 10 m pixels
    assert report["total_area"] == pytest.approx(total_ha, rel=1e-6)
    rows = {r["class"]: r for r in report["classes"]}
    assert sum(r["estimated_area"] for r in rows.values()) == pytest.approx(total_ha, rel=1e-9)
    # user's accuracy is the share of each stratum's points whose label is the map class
    _, _, features = _features(sample)
    for k, name in enumerate(CLASSES):
        ids = [p["id"] for p, _ in features if p["map_value"] == k]
        agree = sum(dw_labels[i] in (name, str(k)) or _synonym_of(dw_labels[i], name) for i in ids)
        assert rows[name]["users_accuracy"] == pytest.approx(agree / len(ids)), name
        assert rows[name]["sample_points"] == len(ids)
        lo, hi = rows[name]["estimated_area"] - rows[name]["estimated_area_ci"], rows[name]["estimated_area"] + \
            rows[name]["estimated_area_ci"]
        assert lo < hi
    assert 0 < report["overall_accuracy"] < 1
    assert "| forest |" in (out / "areas.md").read_text()
    assert (out / "areas.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the labelled CSV twin gives the same estimates
    twin = tmp_path / "labelled.csv"
    with sample.with_suffix(".csv").open() as f:
        rows_csv = list(csv.DictReader(f))
    with twin.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows_csv[0]))
        writer.writeheader()
        writer.writerows({**r, "reference": dw_labels[int(r["id"])]} for r in rows_csv)
    out_csv = tmp_path / "report_csv"
    assert main(["areas", str(class_map), "--reference-sample", str(twin), "-o", str(out_csv), "--quiet"]) == 0
    again = json.loads((out_csv / "areas.json").read_text())
    assert again["classes"] == report["classes"]


def _synonym_of(label, name):
    return {"trees": "forest", "crops": "cropland", "built": "built-up", "grass": "grassland",
            "shrub and scrub": "grassland"}.get(normalize_name(label)) == name


def _fails(args, capsys, *phrases):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("landseg: error:"), err
    for phrase in phrases:
        assert phrase in err, err
    return err


def test_bad_samples_are_refused_in_one_line_and_write_nothing(class_map, sample, dw_labels, tmp_path, capsys):
    out = tmp_path / "report"
    areas = ["areas", str(class_map), "-o", str(out), "--reference-sample"]
    labelled = _write_labelled(sample, tmp_path / "labelled.gpkg", dw_labels)
    _fails([*areas, str(labelled), "--column", "label"], capsys, "no column 'label'", "reference")
    _fails([*areas, str(sample)], capsys, "300 of 300 points", "no 'reference' label")
    outside = {**dw_labels, 1: "glacier", 2: "glacier", 3: "mangroves"}
    _fails([*areas, str(_write_labelled(sample, tmp_path / "outside.gpkg", outside))], capsys,
           "outside the map's legend", "'glacier' (2)", "'mangroves' (1)")
    wgs84 = _write_labelled(sample, tmp_path / "wgs84.gpkg", dw_labels, to_crs="EPSG:4326")
    _fails([*areas, str(wgs84)], capsys, "EPSG:4326", "EPSG:32633")
    _, _, features = _features(sample)
    first_water = min(p["id"] for p, _ in features if p["map_class"] == "water")
    one_water = _write_labelled(sample, tmp_path / "one.gpkg", dw_labels,
                                keep=lambda p: p["map_class"] != "water" or p["id"] == first_water)
    _fails([*areas, str(one_water)], capsys, "fewer than two sample points", "water (1)")
    assert not out.exists()


def test_a_sample_of_another_map_is_refused(class_map, sample, dw_labels, tmp_path, capsys):
    _, _, features = _features(sample)
    swapped = tmp_path / "swapped.csv"
    with swapped.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "x", "y", "map_class", "reference"])
        for props, (x, y) in features:
            wrong = CLASSES[(props["map_value"] + 1) % len(CLASSES)]
            writer.writerow([props["id"], x, y, wrong, dw_labels[props["id"]]])
    _fails(["areas", str(class_map), "--reference-sample", str(swapped), "-o", str(tmp_path / "r")], capsys,
           "map_class other than the map's class", "another map")
    assert not (tmp_path / "r").exists()
