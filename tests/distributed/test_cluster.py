"""Mapping on a 2-worker loopback Dask cluster: same bytes as the single-process map, killed workers, resume."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import dask.config
import pytest
import rasterio
from distributed import Client

from landsegmenter.cli import main
from landsegmenter.infer.distributed import map_distributed

CLASSES = ["water", "forest", "cropland", "built-up", "grassland"]  # as the reference map in conftest.py
TILING = dict(tile_size=128, overlap=32)


def read_band(path):
    with rasterio.open(path) as src:
        return src.read(1)


def _same_as_reference(result, reference) -> None:
    assert (read_band(result.classes) == reference[0]).all()
    assert (read_band(result.confidence) == reference[1]).all()


def _slow_rule(seconds: float):
    """The spectral rule, slowed down so that a run lasts long enough to be interrupted.

    Defined inside a function, so it travels to the workers by value.
    """
    from landsegmenter.model.spectral_rule import SpectralIndexRule

    class SlowRule(SpectralIndexRule):
        def forward(self, *args):
            time.sleep(seconds)
            return super().forward(*args)

    return SlowRule()


def _wait_for(condition, seconds: float = 60.0) -> None:
    deadline = time.time() + seconds
    while not condition():
        if time.time() > deadline:
            pytest.fail("timed out waiting for the run to make progress")
        time.sleep(0.02)


def test_cluster_map_is_byte_identical_and_loads_the_model_once_per_worker(cluster, reference, s2_scene, tmp_path,
                                                                           bounded):
    result = bounded(map_distributed, s2_scene, CLASSES, tmp_path / "out", model="spectral-rule",
                     scheduler=cluster.scheduler_address, block_tiles=3, progress=False, **TILING)
    _same_as_reference(result, reference)
    assert result.workers == 2 and result.blocks == result.blocks_run == 18
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["blocks"] == 18 and record["workers"] == 2 and record["tiles_computed"] == result.tiles_run
    with Client(cluster) as client:
        loaded = client.run(lambda: sorted(__import__("landsegmenter.infer.distributed").infer.distributed._MODELS))
    assert list(loaded.values()) == [[("spectral-rule", "cpu")]] * 2, "each worker loaded the model, once"
    with rasterio.open(result.classes) as dst:
        assert dst.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"


def test_killing_a_worker_mid_run_still_gives_the_single_process_bytes(cluster, reference, s2_scene, tmp_path):
    out = tmp_path / "out"
    store = out / ".landseg-partial" / "blocks"
    outcome: dict = {}

    def mapping() -> None:
        try:
            outcome["result"] = map_distributed(s2_scene, CLASSES, out, model=_slow_rule(0.1), block_tiles=2,
                                                scheduler=cluster.scheduler_address, progress=False, **TILING)
        except BaseException as exc:
            outcome["error"] = exc

    with Client(cluster) as client:
        pids = client.run(os.getpid)
        thread = threading.Thread(target=mapping, daemon=True)
        thread.start()
        _wait_for(lambda: len(list(store.glob("block-*.npz"))) >= 2 and any(client.processing().values()))
        victim = next(w for w, keys in client.processing().items() if keys)
        lost = list(client.processing()[victim])
        finished_before = len(list(store.glob("block-*.npz")))
        os.kill(pids[victim], signal.SIGKILL)
        thread.join(120)
        assert not thread.is_alive(), "the run finished after the kill"
        _wait_for(lambda: len(client.nthreads()) == 2)  # the nanny restarted the worker
        assert pids[victim] not in client.run(os.getpid).values()
    if "error" in outcome:
        raise outcome["error"]
    result = outcome["result"]
    assert lost and finished_before < result.blocks, "the worker died with work in hand"
    _same_as_reference(result, reference)


def test_killing_a_worker_of_the_workers_2_cluster_still_gives_the_single_process_bytes(reference, s2_scene, tmp_path,
                                                                                         monkeypatch):
    """The cluster ``--workers 2`` starts (map_distributed(workers=2)), one of its workers killed mid-run."""
    from landsegmenter.infer import distributed

    real_cluster, started = distributed.local_cluster, []

    def recorded_cluster(workers: int):
        started.append(real_cluster(workers))
        return started[-1]

    monkeypatch.setattr(distributed, "local_cluster", recorded_cluster)
    out = tmp_path / "out"
    store = out / ".landseg-partial" / "blocks"
    outcome: dict = {}

    def mapping() -> None:
        try:
            outcome["result"] = map_distributed(s2_scene, CLASSES, out, model=_slow_rule(0.1), workers=2, block_tiles=2,
                                                progress=False, **TILING)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=mapping, daemon=True)
    thread.start()
    _wait_for(lambda: started and len(list(store.glob("block-*.npz"))) >= 2 or "error" in outcome, seconds=120)
    assert "error" not in outcome, outcome.get("error")
    with Client(started[0]) as client:
        pids = client.run(os.getpid)
        _wait_for(lambda: any(client.processing().values()))
        victim = next(w for w, keys in client.processing().items() if keys)
        lost = list(client.processing()[victim])
        finished_before = len(list(store.glob("block-*.npz")))
        os.kill(pids[victim], signal.SIGKILL)
        thread.join(180)
    assert not thread.is_alive(), "the run finished after the kill"
    if "error" in outcome:
        raise outcome["error"]
    result = outcome["result"]
    assert lost and finished_before < result.blocks == result.blocks_run, "the worker died with work in hand"
    assert result.workers == 2
    _same_as_reference(result, reference)


INTERRUPTED = textwrap.dedent(
    """
    import sys, time
    from landsegmenter.infer.distributed import map_distributed
    from landsegmenter.model.spectral_rule import SpectralIndexRule

    class SlowRule(SpectralIndexRule):
        def forward(self, *args):
            time.sleep(0.15)
            return super().forward(*args)

    map_distributed(sys.argv[1], {classes!r}, sys.argv[2], model=SlowRule(), scheduler=sys.argv[3], block_tiles=2,
                    tile_size=128, overlap=32, progress=False)
    """
).format(classes=CLASSES)


def test_resume_computes_only_the_blocks_not_yet_stored(cluster, reference, s2_scene, tmp_path, bounded):
    script = tmp_path / "interrupted.py"
    script.write_text(INTERRUPTED)
    out = tmp_path / "out"
    store = out / ".landseg-partial" / "blocks"
    proc = subprocess.Popen([sys.executable, str(script), str(s2_scene), str(out), cluster.scheduler_address])
    try:
        _wait_for(lambda: len(list(store.glob("block-*.npz"))) >= 3 or proc.poll() is not None, seconds=90)
    finally:
        proc.kill()
        proc.wait()
    stored = len(list(store.glob("block-*.npz")))
    assert not (out / "classes.tif").exists() and 3 <= stored < 32

    resumed = bounded(map_distributed, s2_scene, CLASSES, out, model="spectral-rule", block_tiles=2, resume=True,
                      scheduler=cluster.scheduler_address, progress=False, **TILING)
    assert resumed.blocks == 32 and resumed.blocks_run == resumed.blocks - stored
    _same_as_reference(resumed, reference)
    assert not (out / ".landseg-partial").exists()


def test_cli_with_a_local_cluster_of_two_workers(reference, s2_scene, tmp_path, capsys, bounded):
    args = ["map", str(s2_scene), "--classes", ",".join(CLASSES), "--model", "spectral-rule", "--tile-size", "128",
            "--overlap", "32", "--workers", "2", "--block-tiles", "4", "-o", str(tmp_path / "out"), "--no-preview"]
    assert bounded(main, args) == 0
    assert "8 of 8 blocks computed on 2 Dask workers" in capsys.readouterr().out
    assert (read_band(tmp_path / "out" / "classes.tif") == reference[0]).all()
    assert (read_band(tmp_path / "out" / "confidence.tif") == reference[1]).all()


def test_unreachable_scheduler_is_one_line_and_leaves_nothing(s2_scene, tmp_path, capsys, bounded):
    args = ["map", str(s2_scene), "--classes", ",".join(CLASSES), "--model", "spectral-rule", "--quiet",
            "--scheduler", "tcp://127.0.0.1:9", "-o", str(tmp_path / "out")]
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        code = bounded(main, args, seconds=60)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("landseg: error: cannot reach the Dask scheduler at tcp://127.0.0.1:9"), err
    assert not (tmp_path / "out").exists()


def test_workers_and_scheduler_together_are_refused(s2_scene, tmp_path, capsys):
    args = ["map", str(s2_scene), "--classes", "water,forest", "--model", "spectral-rule", "--quiet",
            "--workers", "2", "--scheduler", "tcp://127.0.0.1:9", "-o", str(tmp_path / "out")]
    assert main(args) == 2
    assert "not both" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
