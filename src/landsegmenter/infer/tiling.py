"""Overlapping tiles over a scene, the cells they blend into, and the blending window."""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from landsegmenter.errors import LandSegError


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``[0, length)``.

    Tiles are spread evenly, so neighbours overlap by at least ``overlap`` pixels and
    no tile hangs over the end (unless the scene is shorter than one tile).
    """
    if length <= tile:
        return [0]
    count = math.ceil((length - overlap) / (tile - overlap))
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def check_tiling(tile: int, overlap: int) -> None:
    if tile < 32 or tile % 32:
        raise LandSegError(f"tile size must be a multiple of 32 and at least 32, got {tile}")
    if overlap < 0:
        raise LandSegError(f"overlap must not be negative, got {overlap}")
    if tile <= overlap:
        raise LandSegError(f"tile size ({tile}) must be larger than the overlap ({overlap})")


@dataclass(frozen=True)
class Tile:
    index: int
    row: int  # tile-row number
    col: int
    y: int  # pixel offsets in the scene
    x: int


@dataclass(frozen=True)
class Cell:
    """A rectangle of the scene whose covering tiles are all the same set."""

    y0: int
    y1: int
    x0: int
    x1: int
    last_tile: int  # after this tile (in raster order) the cell is complete


class TileLayout:
    """Tiles in raster order plus the cells they blend into.

    Cell edges lie at every tile start and end, so each cell is covered by a fixed set of
    tiles; the last of them in raster order completes it. Only cells in the overlap
    strips stay open between tiles, so blending needs memory proportional to the scene
    width times the overlap, never to the scene size.
    """

    def __init__(self, height: int, width: int, tile: int, overlap: int) -> None:
        check_tiling(tile, overlap)
        self.height, self.width, self.tile, self.overlap = height, width, tile, overlap
        self.ys = tile_starts(height, tile, overlap)
        self.xs = tile_starts(width, tile, overlap)

    @cached_property
    def tiles(self) -> list[Tile]:
        return [
            Tile(r * len(self.xs) + c, r, c, y, x) for r, y in enumerate(self.ys) for c, x in enumerate(self.xs)
        ]

    def row_of_tiles(self, row: int) -> list[Tile]:
        return self.tiles[row * len(self.xs) : (row + 1) * len(self.xs)]

    @staticmethod
    def _edges(starts: list[int], tile: int, length: int) -> list[int]:
        return sorted({0, length, *starts, *(min(s + tile, length) for s in starts)})

    @staticmethod
    def _last_covering(starts: list[int], tile: int, lo: int) -> int:
        return max(i for i, s in enumerate(starts) if s <= lo < s + tile)

    @cached_property
    def cells(self) -> list[Cell]:
        y_edges = self._edges(self.ys, self.tile, self.height)
        x_edges = self._edges(self.xs, self.tile, self.width)
        cells = []
        for y0, y1 in zip(y_edges[:-1], y_edges[1:]):
            last_row = self._last_covering(self.ys, self.tile, y0)
            for x0, x1 in zip(x_edges[:-1], x_edges[1:]):
                last_col = self._last_covering(self.xs, self.tile, x0)
                cells.append(Cell(y0, y1, x0, x1, last_row * len(self.xs) + last_col))
        return cells

    @cached_property
    def cells_by_tile(self) -> dict[int, list[Cell]]:
        """Cells each tile writes into."""
        out: dict[int, list[Cell]] = {t.index: [] for t in self.tiles}
        for cell in self.cells:
            for t in self._covering_tiles(cell):
                out[t].append(cell)
        return out

    @cached_property
    def completed_by_tile(self) -> dict[int, list[Cell]]:
        out: dict[int, list[Cell]] = {t.index: [] for t in self.tiles}
        for cell in self.cells:
            out[cell.last_tile].append(cell)
        return out

    def _covering_tiles(self, cell: Cell) -> list[int]:
        rows = [r for r, y in enumerate(self.ys) if y <= cell.y0 < y + self.tile]
        cols = [c for c, x in enumerate(self.xs) if x <= cell.x0 < x + self.tile]
        return [r * len(self.xs) + c for r in rows for c in cols]

    def redundancy(self) -> float:
        """Pixels computed per scene pixel (1.0 = no overlap)."""
        covered = min(self.tile, self.height) * min(self.tile, self.width) * len(self.tiles)
        return covered / (self.height * self.width)


def blend_window(tile: int, overlap: int) -> np.ndarray:
    """``[tile, tile]`` float32 weights: 1 inside, a raised-cosine ramp across the overlap.

    Never zero, so pixels at the scene border (covered by one tile) keep their value.
    """
    ramp = np.ones(tile, dtype=np.float64)
    if overlap > 0:
        pos = (np.arange(overlap) + 0.5) / overlap
        rise = 0.5 - 0.5 * np.cos(np.pi * pos)
        ramp[:overlap] = rise
        ramp[-overlap:] = np.minimum(ramp[-overlap:], rise[::-1])
    return np.outer(ramp, ramp).astype(np.float32)
