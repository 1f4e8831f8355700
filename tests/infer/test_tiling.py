import numpy as np
import pytest

from landsegmenter.errors import LandSegError
from landsegmenter.infer.blender import Blender
from landsegmenter.infer.tiling import TileLayout, blend_window, tile_starts


@pytest.mark.parametrize("length,tile,overlap", [(1536, 512, 32), (768, 512, 64), (20000, 512, 32), (100, 512, 32), (1000, 256, 0)])
def test_tiles_cover_the_scene_with_at_least_the_overlap(length, tile, overlap):
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0
    assert starts[-1] + tile >= length
    assert all(s + tile <= max(length, tile) for s in starts), "no tile hangs over the end"
    for a, b in zip(starts, starts[1:]):
        assert a + tile - b >= overlap


def test_cells_partition_the_scene_and_complete_after_their_last_tile():
    layout = TileLayout(700, 1100, 256, 48)
    cover = np.zeros((700, 1100), int)
    for cell in layout.cells:
        cover[cell.y0 : cell.y1, cell.x0 : cell.x1] += 1
    assert (cover == 1).all()
    for cell in layout.cells:
        covering = [t for t in layout.tiles if t.y <= cell.y0 < t.y + 256 and t.x <= cell.x0 < t.x + 256]
        assert cell.last_tile == max(t.index for t in covering)
        assert all(cell in layout.cells_by_tile[t.index] for t in covering)


def test_redundant_compute_is_below_1_3_for_a_large_scene():
    assert TileLayout(20000, 20000, 512, 32).redundancy() < 1.3


def test_blend_window_is_smooth_positive_and_symmetric():
    w = blend_window(64, 16)
    assert (w > 0).all() and w.max() == 1.0
    assert np.allclose(w, w.T) and np.allclose(w, w[::-1, ::-1])
    assert np.abs(np.diff(w[32])).max() < 0.2


def test_blender_equals_a_brute_force_weighted_average():
    rng = np.random.default_rng(0)
    h, w, k, tile, overlap = 150, 170, 3, 64, 16
    layout = TileLayout(h, w, tile, overlap)
    window = blend_window(tile, overlap)
    valid_scene = rng.random((h, w)) > 0.1
    acc = np.zeros((k, h, w))
    wsum = np.zeros((h, w))
    blender = Blender(layout, k)
    got = np.full((h, w), 255, np.uint8)
    for t in layout.tiles:
        probs = rng.dirichlet(np.ones(k), size=(tile, tile)).transpose(2, 0, 1).astype(np.float32)
        valid = np.zeros((tile, tile), bool)
        hh, ww = min(tile, h - t.y), min(tile, w - t.x)
        valid[:hh, :ww] = valid_scene[t.y : t.y + hh, t.x : t.x + ww]
        wt = window * valid
        acc[:, t.y : t.y + hh, t.x : t.x + ww] += (probs * wt)[:, :hh, :ww]
        wsum[t.y : t.y + hh, t.x : t.x + ww] += wt[:hh, :ww]
        for done in blender.add(t, probs, valid):
            c = done.cell
            got[c.y0 : c.y1, c.x0 : c.x1] = done.classes
    expected = np.where(wsum > 0, acc.argmax(0), 255)
    assert not blender.open, "every cell was finished"
    assert (got == expected).all()
    assert (got[~valid_scene] == 255).all()


def test_tile_size_must_exceed_overlap():
    with pytest.raises(LandSegError, match="larger than the overlap"):
        TileLayout(100, 100, 64, 64)
