"""Publishing is all or nothing: a failed write (e.g. a full disk) keeps the previous results, byte for byte."""
import errno
import os

import pytest
import rasterio
import rasterio.shutil

from landsegmenter.cli import main
from landsegmenter.infer import rundir
from landsegmenter.infer.distributed import map_distributed
from landsegmenter.infer.rundir import PRODUCTS, RunDir

CLASSES = "water,forest,cropland,built-up"
OTHER_CLASSES = "water,forest,cropland,built-up,grassland"
REAL_COPY = rasterio.shutil.copy


def _map(scene, out, classes=CLASSES, *extra):
    return main(["map", str(scene), "--classes", classes, "-o", str(out), "--model", "spectral-rule", "--quiet",
                 "--tile-size", "256", *extra])


def _snapshot(out):
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("landseg: error: "), err
    return err


def _leaves_no_publishing_debris(out):
    assert not (out / rundir.STAGING_DIR).exists() and not (out / rundir.REPLACED_DIR).exists()


@pytest.fixture
def good_run(s2_scene, tmp_path):
    out = tmp_path / "out"
    assert _map(s2_scene, out) == 0
    return out, _snapshot(out)


def _truncating_copy(victim: str):
    """GDAL's behaviour on a full disk (seen on a small tmpfs): libtiff prints the error straight to
    stderr, no exception is raised, and the COG is cut short."""

    def copy(src, dst, **options):
        REAL_COPY(src, dst, **options)
        if os.path.basename(str(dst)) == victim:
            os.write(2, b"_tiffWriteProc: No space left on device.\n")
            size = os.path.getsize(dst)
            with open(dst, "r+b") as f:
                f.truncate(size // 2)

    return copy


def _disk_full_copy(victim: str):
    def copy(src, dst, **options):
        if os.path.basename(str(dst)) == victim:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        REAL_COPY(src, dst, **options)

    return copy


def test_a_truncated_raster_never_replaces_good_results(good_run, s2_scene, capfd, monkeypatch):
    out, before = good_run
    monkeypatch.setattr(rasterio.shutil, "copy", _truncating_copy("confidence.tif"))
    assert _map(s2_scene, out, OTHER_CLASSES, "--overwrite") == 2
    err = _one_error_line(capfd)
    assert f"No space left on device: {out / '.landseg-publish' / 'confidence.tif'}" in err, err
    assert "previous results are unchanged" in err, err
    assert _snapshot(out) == before
    _leaves_no_publishing_debris(out)
    with rasterio.open(out / "confidence.tif") as src:
        src.read(1)  # the old raster is still complete and readable


def test_disk_full_on_a_fresh_directory_leaves_nothing_finished_and_resume_publishes(s2_scene, tmp_path, capsys,
                                                                                   monkeypatch):
    out = tmp_path / "fresh"
    with monkeypatch.context() as patched:
        patched.setattr(rasterio.shutil, "copy", _disk_full_copy("classes.tif"))
        assert _map(s2_scene, out) == 2
    err = _one_error_line(capsys)
    assert "No space left on device" in err and "nothing was published" in err, err
    assert [p.name for p in out.iterdir()] == [rundir.PARTIAL_DIR]
    main(["map", str(s2_scene), "--classes", CLASSES, "-o", str(out), "--model", "spectral-rule", "--tile-size", "256",
          "--resume", "--no-preview"])
    assert "(0 tiles" in capsys.readouterr().out, "the mapped tiles were kept for --resume"
    assert sorted(p.name for p in out.iterdir()) == sorted(set(PRODUCTS) - {"preview.png"})


def test_a_failed_rename_in_the_swap_restores_the_old_set(good_run, s2_scene, capsys, monkeypatch):
    out, before = good_run
    real_move = rundir._move

    def move(src, dst):
        if dst.parent == out and dst.name == "areas.json":
            raise OSError(errno.EIO, os.strerror(errno.EIO), str(dst))
        real_move(src, dst)

    monkeypatch.setattr(rundir, "_move", move)
    assert _map(s2_scene, out, OTHER_CLASSES, "--overwrite") == 2
    assert "previous results are unchanged" in _one_error_line(capsys)
    assert _snapshot(out) == before
    _leaves_no_publishing_debris(out)


def test_the_new_set_replaces_every_old_product(good_run, s2_scene):
    """Products the new run does not make (here confidence.tif) do not survive next to its class map."""
    out, _ = good_run
    assert _map(s2_scene, out, OTHER_CLASSES, "--overwrite", "--no-confidence") == 0
    assert not (out / "confidence.tif").exists() and (out / "classes.tif").exists()
    _leaves_no_publishing_debris(out)


@pytest.mark.parametrize("moved_in", [0, 2, len(PRODUCTS)])
def test_a_swap_killed_midway_is_settled_when_the_directory_is_next_used(tmp_path, moved_in):
    out = tmp_path / "out"
    (out / rundir.STAGING_DIR).mkdir(parents=True)
    (out / rundir.REPLACED_DIR).mkdir()
    for name in PRODUCTS:
        (out / rundir.REPLACED_DIR / name).write_text(f"old {name}")
        (out / rundir.STAGING_DIR / name).write_text(f"new {name}")
    (out / rundir.REPLACED_DIR / rundir.NEW_SET).write_text("\n".join(PRODUCTS))
    for name in PRODUCTS[:moved_in]:
        os.replace(out / rundir.STAGING_DIR / name, out / name)
    RunDir(out).prepare(overwrite=True, resume=False)
    expected = "new" if moved_in == len(PRODUCTS) else "old"
    assert {p.name: p.read_text() for p in out.iterdir() if p.is_file()} == {n: f"{expected} {n}" for n in PRODUCTS}
    _leaves_no_publishing_debris(out)


def test_disk_full_while_mapping_is_one_line(s2_scene, tmp_path, capsys, monkeypatch):
    def full(self, *args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.partial / "state.tmp.npz"))

    monkeypatch.setattr(RunDir, "save_state", full)
    assert _map(s2_scene, tmp_path / "out") == 2
    err = _one_error_line(capsys)
    assert err == f"landseg: error: No space left on device: {tmp_path / 'out' / '.landseg-partial' / 'state.tmp.npz'}"
    assert not any((tmp_path / "out" / name).exists() for name in PRODUCTS)


def test_the_dask_path_publishes_the_same_way(good_run, s2_scene, monkeypatch):
    out, before = good_run
    monkeypatch.setattr(rasterio.shutil, "copy", _truncating_copy("classes.tif"))
    from landsegmenter.errors import LandSegError

    with pytest.raises(LandSegError, match="previous results are unchanged"):
        map_distributed(s2_scene, OTHER_CLASSES.split(","), out, model="spectral-rule", tile_size=256,
                        overwrite=True, progress=False, block_tiles=2)
    assert _snapshot(out) == before
    _leaves_no_publishing_debris(out)
