"""Blending tile predictions into finished cells with a smooth weight window."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from landsegmenter.infer.tiling import Cell, Tile, TileLayout, blend_window

NODATA = 255


@dataclass
class FinishedCell:
    cell: Cell
    classes: np.ndarray  # [h, w] uint8, NODATA where no valid input
    confidence: np.ndarray  # [h, w] uint8 percent (0-100), NODATA where no valid input


class Blender:
    """Accumulates weighted class probabilities per cell and hands out completed cells.

    Probabilities of overlapping tiles are averaged with :func:`blend_window` weights;
    invalid input pixels get weight 0. A cell is finished once the last tile covering it
    (in raster order) is added, so the result does not depend on batching.
    """

    def __init__(self, layout: TileLayout, num_classes: int) -> None:
        self.layout = layout
        self.num_classes = num_classes
        self.window = blend_window(layout.tile, layout.overlap)
        self.open: dict[Cell, tuple[np.ndarray, np.ndarray]] = {}

    def add(self, tile: Tile, probs: np.ndarray | None, valid: np.ndarray) -> list[FinishedCell]:
        """Add one tile. ``probs [K, T, T]`` float32 (None if the tile has no valid pixel), ``valid [T, T]``."""
        if probs is not None:
            weight = self.window * valid
            for cell in self.layout.cells_by_tile[tile.index]:
                acc, wsum = self._cell(cell)
                ys = slice(cell.y0 - tile.y, cell.y1 - tile.y)
                xs = slice(cell.x0 - tile.x, cell.x1 - tile.x)
                w = weight[ys, xs]
                acc += probs[:, ys, xs] * w
                wsum += w
        return [self._finish(cell) for cell in self.layout.completed_by_tile[tile.index]]

    def _cell(self, cell: Cell) -> tuple[np.ndarray, np.ndarray]:
        if cell not in self.open:
            shape = (cell.y1 - cell.y0, cell.x1 - cell.x0)
            self.open[cell] = (np.zeros((self.num_classes, *shape), np.float32), np.zeros(shape, np.float32))
        return self.open[cell]

    def _finish(self, cell: Cell) -> FinishedCell:
        shape = (cell.y1 - cell.y0, cell.x1 - cell.x0)
        acc, wsum = self.open.pop(cell, (None, None))
        if acc is None:
            empty = np.full(shape, NODATA, np.uint8)
            return FinishedCell(cell, empty, empty.copy())
        valid = wsum > 0
        classes = np.where(valid, acc.argmax(axis=0), NODATA).astype(np.uint8)
        top = acc.max(axis=0) / np.where(valid, wsum, 1.0)
        confidence = np.where(valid, np.rint(np.clip(top, 0, 1) * 100), NODATA).astype(np.uint8)
        return FinishedCell(cell, classes, confidence)

    # --- checkpointing -------------------------------------------------------------
    def state(self) -> dict[str, np.ndarray]:
        out = {}
        for i, (cell, (acc, wsum)) in enumerate(self.open.items()):
            out[f"cell{i}_box"] = np.array([cell.y0, cell.y1, cell.x0, cell.x1, cell.last_tile])
            out[f"cell{i}_acc"] = acc
            out[f"cell{i}_wsum"] = wsum
        return out

    def restore(self, state: dict[str, np.ndarray]) -> None:
        self.open = {}
        for key in sorted(k for k in state if k.endswith("_box")):
            prefix = key[: -len("_box")]
            y0, y1, x0, x1, last = (int(v) for v in state[key])
            self.open[Cell(y0, y1, x0, x1, last)] = (state[f"{prefix}_acc"], state[f"{prefix}_wsum"])
