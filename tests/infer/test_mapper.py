"""Whole-scene mapping of the real Sentinel-2 scene with the spectral-index baseline."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import rasterio
import torch

from landsegmenter import map_scene
from landsegmenter.geo.raster import Scene
from landsegmenter.model.spectral_rule import SpectralIndexRule
from landsegmenter.taxonomy.colors import palette

CLASSES = ["water", "forest", "cropland", "built-up", "grassland"]


def _map(scene, out, **kw):
    kw.setdefault("model", "spectral-rule")
    kw.setdefault("progress", False)
    return map_scene(scene, CLASSES, out, **kw)


def _read(path):
    with rasterio.open(path) as src:
        return src.read(1)


@pytest.fixture(scope="module")
def mapped(s2_scene, tmp_path_factory):
    out = tmp_path_factory.mktemp("map") / "out"
    return _map(s2_scene, out, tile_size=256, overlap=32)


def test_class_map_is_a_valid_georeferenced_cog(mapped, s2_scene):
    with rasterio.open(s2_scene) as src, rasterio.open(mapped.classes) as dst:
        assert dst.crs == src.crs and dst.transform == src.transform
        assert (dst.width, dst.height) == (src.width, src.height)
        assert dst.dtypes[0] == "uint8" and dst.nodata == 255
        assert dst.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert dst.profile["tiled"] and dst.compression.name.lower() == "deflate"
        assert dst.overviews(1), "overviews present"
        assert json.loads(dst.tags()["LANDSEG_CLASS_NAMES"]) == CLASSES
        cmap = dst.colormap(1)
        assert [cmap[i][:3] for i in range(len(CLASSES))] == [tuple(c) for c in palette(CLASSES)]
    conf, classes = _read(mapped.confidence), _read(mapped.classes)
    assert ((conf == 255) == (classes == 255)).all()
    assert conf[conf != 255].max() <= 100
    assert not (mapped.outdir / ".landseg-partial").exists()


def test_tiled_blended_map_equals_the_rule_on_the_whole_scene(mapped, s2_scene):
    with Scene(s2_scene) as scene:
        data, _ = scene.read(rasterio.windows.Window(0, 0, scene.width, scene.height))
        wl = torch.tensor(scene.wavelengths)
    scores = SpectralIndexRule()(torch.from_numpy(data)[None], wl, CLASSES)[0]
    expected = scores.argmax(0).numpy()
    got = _read(mapped.classes)
    assert (got == expected).mean() > 0.9999  # ties at float rounding only


def test_batch_size_does_not_change_the_map(mapped, s2_scene, tmp_path):
    other = _map(s2_scene, tmp_path / "b8", tile_size=256, overlap=32, batch_size=8)
    single = _map(s2_scene, tmp_path / "b1", tile_size=256, overlap=32, batch_size=1)
    assert (_read(other.classes) == _read(mapped.classes)).all()
    assert (_read(single.classes) == _read(mapped.classes)).all()


def test_area_tables_add_up_and_agree(mapped):
    classes = _read(mapped.classes)
    rows = json.loads((mapped.outdir / "areas.json").read_text())
    assert [r["class"] for r in rows] == CLASSES
    for i, row in enumerate(rows):
        assert row["pixels"] == int((classes == i).sum())
        assert row["hectares"] == pytest.approx(row["pixels"] * 0.01)  # 10 m pixels
    csv_lines = (mapped.outdir / "areas.csv").read_text().splitlines()
    assert csv_lines[0] == "class,pixels,hectares,percent" and len(csv_lines) == len(CLASSES) + 1
    assert (mapped.outdir / "preview.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_input_nodata_becomes_output_nodata(s2_scene, tmp_path):
    with rasterio.open(s2_scene) as src:
        data, profile = src.read(), src.profile
    already = (data == 0).any(axis=0)  # the real scene has 4 nodata pixels in B8A
    data[:, 100:300, 400:700] = 0  # declared nodata of the scene
    path = tmp_path / "holes.tif"
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        dst.descriptions = rasterio.open(s2_scene).descriptions
    result = _map(str(path), tmp_path / "out", tile_size=256)
    classes = _read(result.classes)
    hole = np.zeros(classes.shape, bool)
    hole[100:300, 400:700] = True
    hole |= already
    assert (classes[hole] == 255).all() and (classes[~hole] != 255).all()
    assert sum(r["pixels"] for r in result.areas) == (~hole).sum()


def test_geographic_grid_areas_use_true_pixel_size(shared_data, tmp_path):
    scene = shared_data / "s2_l2a_porto_trombetas" / "s2_l2a_12band_10m.tif"
    result = map_scene(str(scene), ["water", "forest", "built-up"], tmp_path / "out", model="spectral-rule",
                       sensor="sentinel2_l2a_pb04", progress=False)
    pixels = sum(r["pixels"] for r in result.areas)
    hectares = sum(r["hectares"] for r in result.areas)
    # 8.98315e-05 deg at 1.47 deg S: 9.997 m x 9.994 m per pixel
    assert hectares / pixels == pytest.approx(0.009991, rel=0.003)


SLOW_RUN = textwrap.dedent(
    """
    import sys, time
    from landsegmenter import map_scene
    from landsegmenter.model.spectral_rule import SpectralIndexRule

    class SlowRule(SpectralIndexRule):
        def forward(self, *args):
            time.sleep(0.15)
            return super().forward(*args)

    map_scene(sys.argv[1], {classes!r}, sys.argv[2], model=SlowRule(), tile_size=128, overlap=32,
              batch_size=4, progress=False)
    """
).format(classes=CLASSES)


def test_kill_then_resume_gives_the_same_map_without_recomputing(s2_scene, tmp_path):
    script = tmp_path / "slow.py"
    script.write_text(SLOW_RUN)
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(script), str(s2_scene), str(out)])
    state = out / ".landseg-partial" / "state.npz"
    deadline = time.time() + 60
    while not state.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert state.exists(), "the run checkpointed before it was killed"
    assert not (out / "classes.tif").exists(), "no finished-looking output after a kill"

    resumed = _map(s2_scene, out, tile_size=128, overlap=32, resume=True)
    assert 0 < resumed.tiles_run < resumed.tiles
    clean = _map(s2_scene, tmp_path / "clean", tile_size=128, overlap=32)
    assert (_read(resumed.classes) == _read(clean.classes)).all()
    assert (_read(resumed.confidence) == _read(clean.confidence)).all()


def test_overwrite_replaces_results_only_when_asked(mapped, s2_scene, tmp_path):
    out = tmp_path / "out"
    _map(s2_scene, out, tile_size=256)
    before = (out / "classes.tif").read_bytes()
    from landsegmenter.errors import LandSegError

    with pytest.raises(LandSegError, match="--overwrite"):
        _map(s2_scene, out, tile_size=256)
    assert (out / "classes.tif").read_bytes() == before
    again = map_scene(s2_scene, ["water", "forest"], out, model="spectral-rule", tile_size=256, overwrite=True,
                      progress=False)
    assert len(json.loads((out / "areas.json").read_text())) == 2 and again.classes.exists()
