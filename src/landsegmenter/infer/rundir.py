"""The output directory of a mapping run: final products, and the partial state of an unfinished run.

Products are published all or nothing: each is written into ``.landseg-publish/`` and
checked there; then the old products move into ``.landseg-replaced/`` and the new ones
into place, renames within one directory. A failure rolls the renames back, so the
directory holds either the complete old set or the complete new one; a run killed in the
middle of the swap is rolled back when the directory is next prepared.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from landsegmenter.errors import LandSegError
from landsegmenter.geo.cog import atomic_write_bytes

PARTIAL_DIR = ".landseg-partial"
STAGING_DIR = ".landseg-publish"
REPLACED_DIR = ".landseg-replaced"
NEW_SET = ".new-set"  # in REPLACED_DIR: the names being published, for rolling back a killed swap
LOCK = "lock"  # in PARTIAL_DIR: "pid host" of the run writing the directory
# Every product of a finished run, in publishing order: rasters before the tables derived
# from them, run.json (the record of a finished run) last.
PRODUCTS = ("classes.tif", "confidence.tif", "classes.qml", "areas.csv", "areas.json", "preview.png", "item.json",
            "run.json")


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
        """Check the directory can take this run and lock it; never deletes finished products."""
        root = self.root
        if root.exists() and not root.is_dir():
            raise LandSegError(f"output path {root} exists and is not a directory")
        self._refuse_if_locked()
        if (root / REPLACED_DIR).is_dir():
            self._roll_back_killed_swap()
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
        atomic_write_bytes(self.partial / LOCK, f"{os.getpid()} {socket.gethostname()}\n".encode())

    def _refuse_if_locked(self) -> None:
        """Refuse while another live process holds the lock (a dead owner's lock is an interrupted run)."""
        owner = _lock_owner(self.partial / LOCK)
        if owner is None:
            return
        pid, host = owner
        if host != socket.gethostname():
            raise LandSegError(
                f"another landseg run (pid {pid} on {host}) may be writing to {self.root}; if it is not running, "
                f"delete {self.partial / LOCK}"
            )
        if pid != os.getpid() and _alive(pid):
            raise LandSegError(f"another landseg run (pid {pid}) is writing to {self.root}")

    def _roll_back_killed_swap(self) -> None:
        """Finish the publish of a run killed between its renames: keep a complete new set, else the old one."""
        replaced, staging = self.root / REPLACED_DIR, self.root / STAGING_DIR
        new = (replaced / NEW_SET).read_text().split() if (replaced / NEW_SET).is_file() else []
        moved_in = [name for name in new if not (staging / name).exists()]
        if not new or len(moved_in) < len(new):
            staging.mkdir(exist_ok=True)
            for name in moved_in:
                os.replace(self.root / name, staging / name)
            for old in replaced.iterdir():
                if old.name != NEW_SET:
                    os.replace(old, self.root / old.name)
        shutil.rmtree(replaced)
        shutil.rmtree(staging, ignore_errors=True)

    keep: ClassVar[tuple[str, ...]] = (LOCK,)  # what a fresh start of the partial files leaves in place

    def start_fresh(self) -> None:
        for child in self.partial.iterdir():
            if child.name in self.keep:
                continue
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()

    def save_state(self, fingerprint: str, arrays: dict[str, np.ndarray]) -> None:
        tmp = self.partial / "state.tmp.npz"
        try:
            np.savez(tmp, fingerprint=np.array(fingerprint), **arrays)
            os.replace(tmp, self.state_file)
        except BaseException as exc:
            tmp.unlink(missing_ok=True)
            if isinstance(exc, OSError) and not exc.filename:  # zipfile's errors do not name the file
                raise OSError(exc.errno, exc.strerror or str(exc), str(tmp)) from None
            raise

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

    # --- publishing ----------------------------------------------------------------
    @property
    def staging(self) -> Path:
        return self.root / STAGING_DIR

    def staged(self, name: str) -> Path:
        """Where a product is written before it is published."""
        return self.staging / name

    def begin_publish(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
        self.staging.mkdir()

    def stage_json(self, name: str, payload: dict) -> None:
        atomic_write_bytes(self.staged(name), (json.dumps(payload, indent=2, ensure_ascii=False) + "\n").encode())

    def publish_staged(self) -> None:
        """Replace the products in the directory by the staged ones, all or nothing (see the module docstring)."""
        names = publishing_order(p.name for p in self.staging.iterdir() if not p.name.startswith("."))
        replaced = self.root / REPLACED_DIR
        shutil.rmtree(replaced, ignore_errors=True)
        replaced.mkdir()
        moved_out: list[str] = []
        moved_in: list[str] = []
        try:
            atomic_write_bytes(replaced / NEW_SET, "\n".join(names).encode())
            for name in publishing_order({*PRODUCTS, *names}):
                if (self.root / name).exists():
                    _move(self.root / name, replaced / name)
                    moved_out.append(name)
            for name in names:
                _move(self.staged(name), self.root / name)
                moved_in.append(name)
        except BaseException:
            for name in reversed(moved_in):
                os.replace(self.root / name, self.staged(name))
            for name in moved_out:
                os.replace(replaced / name, self.root / name)
            shutil.rmtree(replaced, ignore_errors=True)
            raise
        shutil.rmtree(replaced, ignore_errors=True)
        shutil.rmtree(self.staging, ignore_errors=True)

    def discard_staged(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)

    def finish(self) -> None:
        shutil.rmtree(self.partial, ignore_errors=True)

    def abandon(self) -> None:
        """Drop an unusable partial run (e.g. an all-nodata scene)."""
        shutil.rmtree(self.partial, ignore_errors=True)
        self.discard_staged()
        try:
            self.root.rmdir()  # only if we created it and it stayed empty
        except OSError:
            pass


def publishing_order(names) -> list[str]:
    """Known products in :data:`PRODUCTS` order (run.json last), any others before run.json."""
    rank = {name: i for i, name in enumerate(PRODUCTS)}
    return sorted(names, key=lambda n: (n == "run.json", rank.get(n, len(PRODUCTS)), n))


def _move(src: Path, dst: Path) -> None:
    os.replace(src, dst)


def _lock_owner(lock: Path) -> tuple[int, str] | None:
    try:
        pid, host = lock.read_text().split()[:2]
        return int(pid), host
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def fingerprint(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
