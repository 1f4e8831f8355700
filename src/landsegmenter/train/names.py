"""Checks on the class names a model is trained with."""
from __future__ import annotations

from typing import Sequence

from landsegmenter.errors import LandSegError
from landsegmenter.model.landsegmenter import validate_class_names

MAX_NAME_CHARS = 200


def check_train_class_names(names: Sequence[str], where: str = "class names") -> list[str]:
    """LandSegError unless there are >= 2 distinct, non-blank names of at most 200 characters each."""
    validate_class_names(names)
    if len(names) < 2:
        raise LandSegError(
            f"{where}: only one class ({names[0]!r}); a softmax over one class learns nothing, give at least two"
        )
    for name in names:
        if len(name) > MAX_NAME_CHARS:
            raise LandSegError(
                f"{where}: class name {name[:40]!r}... has {len(name)} characters; use at most {MAX_NAME_CHARS}"
            )
    return list(names)
