"""Parsing and checking the class names a user asks for."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from landsegmenter.errors import LandSegError

MAX_CLASSES = 254  # uint8 class maps keep 255 for nodata


def parse_class_names(classes: str | Sequence[str] | None = None, classes_file: str | Path | None = None) -> list[str]:
    """Class names from a comma-separated string, a sequence, or a file (one per line, ``#`` comments).

    Names are stripped; empty, blank or duplicate names (case-insensitive) are errors.
    """
    if classes and classes_file:
        raise LandSegError("give the classes either inline or as a file, not both")
    if classes_file is not None:
        names = _read_class_file(Path(classes_file))
    elif isinstance(classes, str):
        names = classes.split(",")
    elif classes:
        names = list(classes)
    else:
        raise LandSegError("no class names given: pass --classes \"water,forest,...\" or --classes-file")
    return check_class_names(names)


def check_class_names(names: Sequence[str]) -> list[str]:
    cleaned = [str(n).replace("\ufeff", "").strip() for n in names]  # a byte-order mark is never part of a name
    if not cleaned or all(not n for n in cleaned):
        raise LandSegError("the class list is empty")
    if any(not n for n in cleaned):
        raise LandSegError(f"empty class name in {', '.join(repr(n) for n in cleaned)}")
    seen: dict[str, str] = {}
    for name in cleaned:
        key = name.casefold()
        if key in seen:
            raise LandSegError(f"duplicate class name {name!r}")
        seen[key] = name
    if len(cleaned) > MAX_CLASSES:
        raise LandSegError(f"at most {MAX_CLASSES} classes are supported, got {len(cleaned)}")
    return cleaned


def _read_class_file(path: Path) -> list[str]:
    if not path.is_file():
        raise LandSegError(f"no such class file: {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise LandSegError(f"class file {path} is not UTF-8 text") from None
    lines = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    return [line for line in lines if line]
