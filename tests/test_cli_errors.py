"""Bad input: one clear line on stderr, exit status 2, and no output left behind."""
import subprocess
import sys
import time

import numpy as np
import pytest
import rasterio

from landsegmenter.cli import main

CLASSES = "water,forest,cropland,built-up"


def _fails(capsys, args, message, out):
    code = main(["map", *args, "-o", str(out), "--model", "spectral-rule", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("landseg: error: "), err
    assert message in err, err
    return err


def test_missing_file(capsys, tmp_path):
    _fails(capsys, [str(tmp_path / "nope.tif"), "--classes", CLASSES], "no such file", tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_corrupt_raster(capsys, tmp_path, s2_scene):
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"II*\x00" + b"\x17" * 2000)
    _fails(capsys, [str(bad), "--classes", CLASSES], "cannot read", tmp_path / "o")
    truncated = tmp_path / "truncated.tif"
    truncated.write_bytes(s2_scene.read_bytes()[:400_000])
    _fails(capsys, [str(truncated), "--classes", CLASSES], "cannot read", tmp_path / "o2")
    assert not (tmp_path / "o").exists()
    assert not (tmp_path / "o2" / "classes.tif").exists()


def test_fewer_bands_than_the_model_needs(capsys, tmp_path, shared_data):
    s1 = next((shared_data / "bigearthnet_v2_mock" / "s1").glob("*.tif"))
    _fails(capsys, [str(s1), "--sensor", "sentinel1_grd", "--classes", CLASSES], "needs red and nir", tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_unknown_sensor(capsys, tmp_path, s2_scene):
    _fails(capsys, [str(s2_scene), "--sensor", "sentinel9", "--classes", CLASSES], "unknown sensor 'sentinel9'", tmp_path / "o")


def test_unknown_band_name(capsys, tmp_path, s2_scene):
    _fails(capsys, [str(s2_scene), "--bands", "B04,B99", "--classes", CLASSES], "unknown band 'B99'", tmp_path / "o")


def test_wavelength_count_does_not_match_the_bands(capsys, tmp_path, s2_scene):
    args = [str(s2_scene), "--bands", "B03,B04,B08", "--wavelengths", "0.56,0.665", "--classes", CLASSES]
    _fails(capsys, args, "2 wavelengths given for 3 bands", tmp_path / "o")


def test_all_nodata_scene(capsys, tmp_path, s2_scene):
    with rasterio.open(s2_scene) as src:
        profile, names = src.profile, src.descriptions
    empty = tmp_path / "empty.tif"
    with rasterio.open(empty, "w", **profile) as dst:
        dst.write(np.zeros((13, profile["height"], profile["width"]), np.uint16))
        dst.descriptions = names
    _fails(capsys, [str(empty), "--classes", CLASSES], "no valid pixels", tmp_path / "o")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("classes,message", [("", "class list is empty"), (" , ", "class list is empty"), ("water,,forest", "empty class name"),
                                             ("water,Forest,forest", "duplicate class name 'forest'")])
def test_empty_or_duplicate_class_names(capsys, tmp_path, s2_scene, classes, message):
    _fails(capsys, [str(s2_scene), "--classes", classes], message, tmp_path / "o")


def test_empty_class_file(capsys, tmp_path, s2_scene):
    f = tmp_path / "classes.txt"
    f.write_text("# my legend\n\n")
    _fails(capsys, [str(s2_scene), "--classes-file", str(f)], "class list is empty", tmp_path / "o")


def test_output_directory_not_writable(capsys, tmp_path, s2_scene):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    _fails(capsys, [str(s2_scene), "--classes", CLASSES], "cannot write to output directory", blocker / "out")


def test_existing_output_without_overwrite(capsys, tmp_path, s2_scene):
    out = tmp_path / "o"
    assert main(["map", str(s2_scene), "--classes", CLASSES, "-o", str(out), "--model", "spectral-rule", "--quiet"]) == 0
    before = (out / "classes.tif").stat().st_mtime_ns
    _fails(capsys, [str(s2_scene), "--classes", CLASSES], "--overwrite", out)
    assert (out / "classes.tif").stat().st_mtime_ns == before


def test_tile_size_not_larger_than_overlap(capsys, tmp_path, s2_scene):
    args = [str(s2_scene), "--classes", CLASSES, "--tile-size", "64", "--overlap", "64"]
    _fails(capsys, args, "must be larger than the overlap", tmp_path / "o")


def test_console_script_exit_status(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "landsegmenter.cli", "map", str(tmp_path / "x.tif"), "--classes",
                           "a,b", "-o", str(tmp_path / "o")], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.strip() == f"landseg: error: no such file: {tmp_path / 'x.tif'}"


@pytest.mark.parametrize("tile", ["0", "-256"])
def test_tile_size_zero_or_negative_is_named_as_such(capsys, tmp_path, s2_scene, tile):
    err = _fails(capsys, [str(s2_scene), "--classes", CLASSES, "--tile-size", tile], "tile size must be", tmp_path / "o")
    assert f"got {tile}" in err and "overlap" not in err, err


def test_an_empty_band_list_is_named_as_such(capsys, tmp_path, s2_scene):
    err = _fails(capsys, [str(s2_scene), "--bands", ",", "--classes", CLASSES], "empty band name", tmp_path / "o")
    assert "twice" not in err


def test_a_byte_order_mark_is_not_part_of_the_first_class_name(tmp_path, s2_scene):
    legend = tmp_path / "legend.txt"
    legend.write_bytes("water\nforest\n".encode("utf-8-sig"))
    out = tmp_path / "o"
    assert main(["map", str(s2_scene), "--classes-file", str(legend), "-o", str(out), "--model", "spectral-rule",
                 "--quiet", "--tile-size", "256", "--no-preview", "--no-confidence"]) == 0
    with rasterio.open(out / "classes.tif") as src:
        assert src.tags()["LANDSEG_CLASS_NAMES"] == '["water", "forest"]'


SLOW_RUN = """
import sys, time
from landsegmenter import map_scene
from landsegmenter.model.spectral_rule import SpectralIndexRule

class SlowRule(SpectralIndexRule):
    def forward(self, *args):
        time.sleep(0.5)  # long enough to try the directory while this run holds it
        return super().forward(*args)

map_scene(sys.argv[1], ["water", "forest"], sys.argv[2], model=SlowRule(), tile_size=128, overlap=32, progress=False)
"""


def test_a_live_run_is_not_taken_for_an_interrupted_one(capsys, tmp_path, s2_scene):
    script = tmp_path / "slow.py"
    script.write_text(SLOW_RUN)
    out = tmp_path / "o"
    lock = out / ".landseg-partial" / "lock"
    live = subprocess.Popen([sys.executable, str(script), str(s2_scene), str(out)])
    try:
        deadline = time.time() + 60
        while not lock.exists() and live.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert lock.exists(), "the running map locked its directory"
        for extra in ([], ["--resume"], ["--overwrite"]):
            args = [str(s2_scene), "--classes", "water,forest", "--tile-size", "128", *extra]
            _fails(capsys, args, f"another landseg run (pid {live.pid}) is writing to {out}", out)
    finally:
        live.kill()
        live.wait()
    _fails(capsys, [str(s2_scene), "--classes", "water,forest", "--tile-size", "128"], "holds an interrupted run", out)


def test_a_tile_size_too_large_for_memory_is_refused_before_allocating(capsys, tmp_path, s2_scene):
    args = [str(s2_scene), "--classes", CLASSES, "--tile-size", "1000000"]
    err = _fails(capsys, args, "tile size 1000000 with batch size 4 needs at least", tmp_path / "o")
    assert "TB of memory" in err or "PB of memory" in err, err
    assert not (tmp_path / "o").exists()


def test_the_memory_bound_counts_tile_size_and_batch(capsys, tmp_path, s2_scene, monkeypatch):
    from landsegmenter.infer import mapper

    monkeypatch.setattr(mapper, "available_memory", lambda: 50_000_000)
    args = [str(s2_scene), "--classes", CLASSES, "--tile-size", "512"]
    _fails(capsys, args, "more than the 50.0 MB available", tmp_path / "o")
    small = ["map", str(s2_scene), "--classes", CLASSES, "-o", str(tmp_path / "o"), "--model", "spectral-rule",
             "--quiet", "--tile-size", "128", "--batch-size", "1", "--no-preview"]
    assert main(small) == 0


def test_wavelengths_in_nanometres_are_refused_with_a_hint(capsys, tmp_path, s2_scene):
    args = [str(s2_scene), "--bands", "B02,B03,B04", "--wavelengths", "490,560,665", "--classes", CLASSES]
    _fails(capsys, args, "did you give nanometres? 490 nm = 0.49 µm", tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_a_sensor_the_band_names_contradict_is_refused_naming_both(capsys, tmp_path, shared_data):
    s2 = shared_data / "s2_l2a_porto_trombetas" / "s2_l2a_12band_10m.tif"
    err = _fails(capsys, [str(s2), "--sensor", "landsat5_tm", "--classes", CLASSES], "named as sentinel2_l2a bands",
                 tmp_path / "o")
    assert "--sensor sentinel2_l2a" in err and "landsat5" in err, err


def test_a_sensor_the_wavelength_metadata_contradicts_is_refused(capsys, tmp_path, s2_scene):
    """B01..B07 are Landsat band names too; the file's wavelength tags tell the sensors apart."""
    with rasterio.open(s2_scene) as src:
        profile = {**src.profile, "count": 7}
        data, names = src.read(list(range(1, 8))), src.descriptions[:7]
        tags = [src.tags(i) for i in range(1, 8)]
    subset = tmp_path / "s2_7band.tif"
    with rasterio.open(subset, "w", **profile) as dst:
        dst.write(data)
        dst.descriptions = names
        for i, band_tags in enumerate(tags, start=1):
            dst.update_tags(i, **band_tags)
    err = _fails(capsys, [str(subset), "--sensor", "landsat5_tm", "--classes", CLASSES], "by its metadata",
                 tmp_path / "o")
    assert "0.443 µm" in err and "B1 is at 0.485 µm" in err, err
