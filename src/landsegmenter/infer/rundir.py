"""The output directory of a mapping run: final products, and the partial state of an unfinished run."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from landsegmenter.errors import LandSegError
from landsegmenter.geo.cog import atomic_write_bytes

PARTIAL_DIR = ".landseg-partial"
PRODUCTS = ("classes.tif", "confidence.tif", "areas.csv", "areas.json", "preview.png", "run.json", "item.json",
            "classes.qml")


@dataclass
class RunDir:
    """``outdir/`` holds finished products only; ``outdir/.landseg-partial/`` the unfinished run."""

    root: Path

    @property
    def partial(self) -> Path:
        return self.root / PARTIAL_DIR

    @property
    def state_file(self) -> Path:
        return self.partial / "state.npz"

    def product(self, name: str) -> Path:
        return self.root / name

    def prepare(self, *, overwrite: bool, resume: bool) -> None:
        """Check the directory can take this run; never deletes finished products (they are replaced atomically)."""
        root = self.root
        if root.exists() and not root.is_dir():
            raise LandSegError(f"output path {root} exists and is not a directory")
        has_products = root.is_dir() and any((root / p).exists() for p in PRODUCTS)
        has_partial = self.partial.is_dir()
        if has_partial and not (resume or overwrite):
            raise LandSegError(
                f"{root} holds an interrupted run: pass --resume to continue it or --overwrite to start again"
            )
        if resume and has_products and not has_partial:
            raise LandSegError(f"nothing to resume: {root} already holds a finished map")
        if has_products and not has_partial and not overwrite:
            raise LandSegError(f"output directory {root} already holds results; pass --overwrite to replace them")
        try:
            self.partial.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LandSegError(f"cannot write to output directory {root}: {exc.strerror}") from None
        if not os.access(self.partial, os.W_OK):
            raise LandSegError(f"cannot write to output directory {root}: permission denied")

    def start_fresh(self) -> None:
        for child in self.partial.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()

    def save_state(self, fingerprint: str, arrays: dict[str, np.ndarray]) -> None:
        tmp = self.partial / "state.tmp.npz"
        np.savez(tmp, fingerprint=np.array(fingerprint), **arrays)
        os.replace(tmp, self.state_file)

    def load_state(self, fingerprint: str) -> dict[str, np.ndarray] | None:
        """The saved state of an interrupted run with the same fingerprint, or None."""
        if not self.state_file.is_file():
            return None
        with np.load(self.state_file, allow_pickle=False) as saved:
            state = {k: saved[k] for k in saved.files}
        if str(state.pop("fingerprint")) != fingerprint:
            raise LandSegError(
                f"the interrupted run in {self.root} used other inputs or options; pass --overwrite to start again"
            )
        return state

    def write_json(self, name: str, payload: dict) -> None:
        atomic_write_bytes(self.product(name), (json.dumps(payload, indent=2, ensure_ascii=False) + "\n").encode())

    def finish(self) -> None:
        shutil.rmtree(self.partial, ignore_errors=True)

    def abandon(self) -> None:
        """Drop an unusable partial run (e.g. an all-nodata scene)."""
        shutil.rmtree(self.partial, ignore_errors=True)
        try:
            self.root.rmdir()  # only if we created it and it stayed empty
        except OSError:
            pass


def fingerprint(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
