"""Reading the split files that some benchmarks publish."""
from __future__ import annotations

from pathlib import Path

from landsegmenter.errors import LandSegError


def read_name_list(path: Path, dataset: str) -> list[str]:
    """Non-empty, stripped lines of a split file (one file name per line)."""
    if not path.is_file():
        raise LandSegError(f"{dataset}: split file {path} not found; point the path at the extracted release")
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    names = [n for n in names if n and not n.startswith("#")]
    if not names:
        raise LandSegError(f"{dataset}: split file {path} lists no files")
    return names
