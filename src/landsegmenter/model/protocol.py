"""The contract between models and the scene mapper."""
from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import torch


@runtime_checkable
class Segmenter(Protocol):
    """Anything that turns a normalised image and class names into class scores.

    ``model(image, wavelengths, class_names) -> scores``

    - ``image``: float32 tensor ``[B, C, H, W]``, normalised per band
      (``(physical - mean) / std``, masked pixels set to 0).
    - ``wavelengths``: float32 tensor ``[C]``, centre wavelength of each band in µm.
    - ``class_names``: the ``K`` class names, in output order.
    - returns float tensor ``[B, K, H, W]`` of unnormalised scores (logits);
      the mapper applies a softmax over ``K``.

    Optional: ``validate(wavelengths, class_names)`` raising
    :class:`landsegmenter.errors.LandSegError` with a one-line message when
    the model cannot serve these bands or classes (checked before any tile runs).
    """

    def __call__(
        self, image: torch.Tensor, wavelengths: torch.Tensor, class_names: Sequence[str]
    ) -> torch.Tensor: ...
