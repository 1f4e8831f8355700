"""Fixtures for mapping on Dask: a 2-worker loopback cluster, a time bound, the single-process reference map."""
from __future__ import annotations

import threading

import pytest
import rasterio

from landsegmenter import map_scene

CLASSES = ["water", "forest", "cropland", "built-up", "grassland"]
TILING = dict(tile_size=128, overlap=32)


def read_band(path):
    with rasterio.open(path) as src:
        return src.read(1)


@pytest.fixture(scope="module")
def cluster():
    """Two single-threaded worker processes on loopback, shut down after the module."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0", timeout=60) as local:
        yield local


@pytest.fixture
def bounded():
    """Run ``fn(*args, **kw)`` in a thread and fail the test if it is not done within ``seconds``."""

    def run(fn, *args, seconds: float = 100, **kw):
        out: dict = {}

        def target() -> None:
            try:
                out["value"] = fn(*args, **kw)
            except BaseException as exc:  # handed to the test thread
                out["error"] = exc

        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        thread.join(seconds)
        if thread.is_alive():
            pytest.fail(f"{getattr(fn, '__name__', fn)} did not finish within {seconds} s")
        if "error" in out:
            raise out["error"]
        return out["value"]

    return run


@pytest.fixture(scope="session")
def reference(s2_scene, tmp_path_factory):
    """The single-process map of the real scene: class and confidence arrays."""
    out = tmp_path_factory.mktemp("reference") / "map"
    result = map_scene(s2_scene, CLASSES, out, model="spectral-rule", progress=False, preview=False, **TILING)
    return read_band(result.classes), read_band(result.confidence)
