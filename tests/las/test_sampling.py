"""Patch sampling on real label products: counts, limits, balance, spacing, determinism."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from landsegmenter.las.manifest import SamplingSpec
from landsegmenter.las.sampling import filter_candidates, order_candidates, scan_candidates, scene_rng

K_DW = 9


@pytest.fixture(scope="module")
def dw_label(shared_data) -> np.ndarray:
    with rasterio.open(shared_data / "s2_t33uuu_20170216" / "dynamic_world_label.tif") as src:
        return src.read(1)


@pytest.fixture(scope="module")
def osm_label(shared_data) -> np.ndarray:
    with rasterio.open(shared_data / "s2_t33uuu_20170216" / "osm_landuse_label.tif") as src:
        return src.read(1)


def reader(array: np.ndarray):
    def read(window: Window) -> np.ndarray:
        (r0, r1), (c0, c1) = window.toranges()
        return array[r0:r1, c0:c1]

    return read


def full(array: np.ndarray) -> Window:
    return Window(0, 0, array.shape[1], array.shape[0])


def test_candidate_counts_equal_direct_counts(dw_label):
    spec = SamplingSpec(patch_size=96, stride=32)
    cands = scan_candidates(reader(dw_label), Window(100, 50, 1000, 700), spec, K_DW, scene_rng(0, "a"))
    assert len(cands) > 100
    assert (cands.rows >= 50).all() and (cands.cols >= 100).all()
    assert (cands.rows + 96 <= 750).all() and (cands.cols + 96 <= 1100).all()
    for i in (0, len(cands) // 2, len(cands) - 1):
        patch = dw_label[cands.rows[i] : cands.rows[i] + 96, cands.cols[i] : cands.cols[i] + 96]
        assert np.array_equal(cands.counts[i, :K_DW], np.bincount(patch.ravel(), minlength=K_DW)[:K_DW])
        assert cands.counts[i].sum() == 96 * 96


def test_sampling_is_deterministic_for_a_seed(dw_label):
    spec = SamplingSpec(patch_size=64, strategy="random")

    def origins(seed: int, scene: str) -> list[tuple[int, int]]:
        cands = scan_candidates(reader(dw_label), full(dw_label), spec, K_DW, scene_rng(seed, scene))
        order = order_candidates(cands, spec, 20, scene_rng(seed + 1, scene))
        return [(int(cands.rows[i]), int(cands.cols[i])) for i in order]

    assert origins(3, "x") == origins(3, "x")
    assert origins(3, "x") != origins(4, "x")
    assert origins(3, "x") != origins(3, "y")


@pytest.mark.parametrize("strategy", ["balanced", "random", "grid"])
def test_min_spacing_is_respected(dw_label, strategy):
    spec = SamplingSpec(patch_size=64, stride=16, min_spacing=80, strategy=strategy)
    cands = scan_candidates(reader(dw_label), full(dw_label), spec, K_DW, scene_rng(0, "s"))
    order = order_candidates(cands, spec, None, scene_rng(1, "s"))
    rows, cols = cands.rows[order], cands.cols[order]
    assert len(order) > 50
    for i in range(len(order)):
        close = (np.abs(rows - rows[i]) < 80) & (np.abs(cols - cols[i]) < 80)
        assert close.sum() == 1  # only itself


def test_balanced_sampling_raises_the_share_of_rare_classes(dw_label):
    spec = SamplingSpec(patch_size=64, stride=32)
    cands = scan_candidates(reader(dw_label), full(dw_label), spec, K_DW, scene_rng(0, "b"))

    def class_shares(strategy: str) -> np.ndarray:
        chosen = order_candidates(cands, dataclasses.replace(spec, strategy=strategy), 30, scene_rng(1, "b"))
        totals = cands.counts[chosen, :K_DW].sum(axis=0)
        return totals / totals.sum()

    balanced, random = class_shares("balanced"), class_shares("random")
    scene = np.bincount(dw_label.ravel(), minlength=K_DW)[:K_DW] / dw_label.size
    rare = [i for i in range(K_DW) if 0.01 < scene[i] < 0.05]  # shrub, built, bare
    assert len(rare) >= 3
    assert balanced[rare].sum() > 1.5 * random[rare].sum()
    assert balanced[4] < scene[4]  # crops, 42 % of the scene, is sampled less than its share


def test_min_labelled_fraction_on_sparse_osm(osm_label):
    spec = SamplingSpec(patch_size=128, stride=64, min_labelled_fraction=0.4)
    cands = scan_candidates(reader(osm_label), full(osm_label), spec, 8, scene_rng(0, "osm"))
    labelled = cands.counts[:, :8].sum(axis=1) / 128**2
    kept = filter_candidates(cands, spec, water=[])
    assert kept.rejected["unlabelled"] == int((labelled < 0.4).sum()) > 0
    assert len(kept) == int((labelled >= 0.4).sum()) > 0
    assert (kept.counts[:, :8].sum(axis=1) / 128**2 >= 0.4).all()


def test_land_only_rejects_water_patches(dw_label):
    spec = SamplingSpec(patch_size=64, stride=32, land_only=True, max_water_fraction=0.5)
    cands = scan_candidates(reader(dw_label), full(dw_label), spec, K_DW, scene_rng(0, "land"))
    kept = filter_candidates(cands, spec, water=[0])
    assert kept.rejected["water"] > 0
    water_share = kept.counts[:, 0] / kept.counts[:, :K_DW].sum(axis=1)
    assert (water_share <= 0.5).all()
    assert len(kept) + kept.rejected["water"] == len(cands)


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_all_cloud_candidates_are_rejected_and_counted(shared_data):
    folder = shared_data / "s2_betsiboka_madagascar"
    with rasterio.open(folder / "dynamic_world_label.tif") as src:
        label = src.read(1)
    with rasterio.open(folder / "s2cloudless_cloud_mask.tif") as src:
        cloud = src.read(1) == 1
    spec = SamplingSpec(patch_size=64, stride=64, max_cloud_fraction=0.99)
    cands = scan_candidates(reader(label), full(label), spec, K_DW, scene_rng(0, "c"), clouds=reader(cloud))
    cloud_share = cands.counts[:, K_DW + 1] / 64**2
    kept = filter_candidates(cands, spec, water=[])
    assert (cloud_share == 1).sum() > 0
    assert kept.rejected["cloud"] == int((cloud_share > 0.99).sum())
    assert (kept.counts[:, K_DW + 1] < 64 * 64).all()


def test_scene_smaller_than_a_patch(dw_label):
    spec = SamplingSpec(patch_size=128)
    cands = scan_candidates(reader(dw_label), Window(0, 0, 100, 100), spec, K_DW, scene_rng(0, "tiny"))
    assert len(cands) == 0 and cands.rejected["scene smaller than a patch"] == 1
    assert order_candidates(cands, spec, 5, scene_rng(0, "tiny")) == []
