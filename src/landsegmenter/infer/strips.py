"""Collecting finished cells into full-width strips and writing each strip once."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from landsegmenter.geo.cog import BLOCK, write_strip
from landsegmenter.infer.blender import NODATA, FinishedCell


class StripWriter:
    """Buffers finished cells and writes block-aligned strips of rows when they are complete.

    Writing whole, block-aligned strips keeps every compressed block written exactly once.
    ``targets`` maps a layer name (``"classes"``, ``"confidence"``) to its partial raster.
    """

    def __init__(self, width: int, height: int, targets: dict[str, Path], first_row: int = 0) -> None:
        self.width, self.height = width, height
        self.targets = targets
        self.next_row = first_row  # rows above this are on disk
        self.buffers: dict[int, dict[str, np.ndarray]] = {}
        self.filled: dict[int, int] = {}

    def _strip_height(self, start: int) -> int:
        return min(BLOCK, self.height - start)

    def add(self, finished: FinishedCell) -> None:
        cell = finished.cell
        for start in range(cell.y0 - cell.y0 % BLOCK, cell.y1, BLOCK):
            lo, hi = max(cell.y0, start), min(cell.y1, start + BLOCK)
            buf = self._buffer(start)
            for name in self.targets:
                layer = finished.classes if name == "classes" else finished.confidence
                buf[name][lo - start : hi - start, cell.x0 : cell.x1] = layer[lo - cell.y0 : hi - cell.y0]
            self.filled[start] += (hi - lo) * (cell.x1 - cell.x0)
        self._flush_complete()

    def _buffer(self, start: int) -> dict[str, np.ndarray]:
        if start not in self.buffers:
            shape = (self._strip_height(start), self.width)
            self.buffers[start] = {name: np.full(shape, NODATA, np.uint8) for name in self.targets}
            self.filled[start] = 0
        return self.buffers[start]

    def _flush_complete(self) -> None:
        while self.next_row in self.buffers and self.filled[self.next_row] == self._strip_height(self.next_row) * self.width:
            start = self.next_row
            for name, path in self.targets.items():
                write_strip(path, start, self.buffers[start][name])
            del self.buffers[start], self.filled[start]
            self.next_row = start + BLOCK

    @property
    def done(self) -> bool:
        return self.next_row >= self.height

    # --- checkpointing -------------------------------------------------------------
    def state(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {"strips_next_row": np.array(self.next_row)}
        for start, layers in self.buffers.items():
            out[f"strip{start}_filled"] = np.array(self.filled[start])
            for name, arr in layers.items():
                out[f"strip{start}_{name}"] = arr
        return out

    def restore(self, state: dict[str, np.ndarray]) -> None:
        self.next_row = int(state["strips_next_row"])
        self.buffers, self.filled = {}, {}
        for key in state:
            if key.startswith("strip") and key.endswith("_filled"):
                start = int(key[len("strip") : -len("_filled")])
                self.filled[start] = int(state[key])
                self.buffers[start] = {name: state[f"strip{start}_{name}"].copy() for name in self.targets}
