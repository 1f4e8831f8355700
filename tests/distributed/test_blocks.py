"""Blocks of the output grid: whole cells, exact halos, and the same map as the single-process mapper."""
from __future__ import annotations

import numpy as np
import pytest
import rasterio

from landsegmenter.errors import LandSegError
from landsegmenter.infer.distributed import BlockLayout, map_distributed, plan_blocks
from landsegmenter.infer.tiling import TileLayout

CLASSES = ["water", "forest", "cropland", "built-up", "grassland"]  # as the reference map in conftest.py
TILING = dict(tile_size=128, overlap=32)


def read_band(path):
    with rasterio.open(path) as src:
        return src.read(1)


@pytest.mark.parametrize("shape,tile,overlap,block_tiles", [
    ((768, 1536), 128, 32, 1), ((768, 1536), 128, 32, 3), ((768, 1536), 256, 32, 2),
    ((1000, 700), 256, 64, 2), ((100, 90), 128, 32, 4),
])
def test_blocks_tile_the_grid_with_whole_cells_and_exact_halos(shape, tile, overlap, block_tiles):
    layout = TileLayout(*shape, tile, overlap)
    blocks = plan_blocks(layout, block_tiles)
    owner = np.full(shape, -1)
    for block in blocks:
        assert (owner[block.y0:block.y1, block.x0:block.x1] == -1).all(), "blocks do not overlap"
        owner[block.y0:block.y1, block.x0:block.x1] = block.index
        intersecting = [t.index for t in layout.tiles
                        if t.y < block.y1 and t.y + tile > block.y0 and t.x < block.x1 and t.x + tile > block.x0]
        assert list(block.tiles) == intersecting, "a block's tiles are exactly those touching it, in raster order"
    assert (owner >= 0).all(), "blocks cover the grid"
    for cell in layout.cells:
        assert len(np.unique(owner[cell.y0:cell.y1, cell.x0:cell.x1])) == 1, "no cell is split between blocks"
    rows = -(-len(layout.ys) // block_tiles)
    cols = -(-len(layout.xs) // block_tiles)
    assert len(blocks) == rows * cols


def test_a_block_layout_finishes_exactly_its_cells_with_its_tiles():
    layout = TileLayout(768, 1536, 128, 32)
    block = plan_blocks(layout, 3)[4]
    local = BlockLayout(768, 1536, 128, 32, block)
    inside = [c for c in layout.cells if block.y0 <= c.y0 < block.y1 and block.x0 <= c.x0 < block.x1]
    assert local.cells == inside and inside
    assert {c.last_tile for c in local.cells} <= set(block.tiles)
    finished = [c for t in block.tiles for c in local.completed_by_tile[t]]
    assert len(finished) == len(inside) and set(finished) == set(inside), "each cell finished once, by its tiles"
    for t in block.tiles:  # the same per-tile cell lists as the full layout, restricted to the block
        assert local.cells_by_tile[t] == [c for c in layout.cells_by_tile[t] if c in set(inside)]


def test_blocks_in_this_process_give_the_single_process_bytes(s2_scene, reference, tmp_path):
    result = map_distributed(s2_scene, CLASSES, tmp_path / "out", model="spectral-rule", block_tiles=3,
                             progress=False, preview=False, **TILING)
    assert (read_band(result.classes) == reference[0]).all()
    assert (read_band(result.confidence) == reference[1]).all()
    assert result.workers == 0 and result.blocks == result.blocks_run == 3 * 6
    assert result.tiles_run > result.tiles  # halos: tiles next to block edges are predicted twice
    assert not (tmp_path / "out" / ".landseg-partial").exists()
    assert (tmp_path / "out" / "item.json").is_file() and (tmp_path / "out" / "classes.qml").is_file()


def test_block_size_must_be_positive(s2_scene, tmp_path):
    with pytest.raises(LandSegError, match="--block-tiles must be at least 1"):
        map_distributed(s2_scene, CLASSES, tmp_path / "out", model="spectral-rule", block_tiles=0, progress=False)
    assert not (tmp_path / "out").exists()
