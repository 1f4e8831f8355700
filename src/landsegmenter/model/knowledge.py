"""Spectral knowledge as a second, open-vocabulary expert for the confidence-guided fusion.

The decoder knows the classes it was trained on; physics knows a few land-cover concepts
everywhere: water is dark in the near infrared, vegetation has a high NDVI, bare soil is
bright. This expert scores each pixel against the prototypes of the spectral-index rule
(:mod:`landsegmenter.model.spectral_rule`) and hands those scores to the classes whose
names denote a concept:

- a class name containing a concept keyword ("mixed forest" -> trees) takes that concept;
- otherwise the concept whose keyword is nearest to the name in the text encoder's space,
  when the cosine similarity reaches ``min_similarity`` ("woodland" -> trees);
- otherwise the class has no spectral knowledge and the expert abstains on it.

Shapes: reflectance [B, C, H, W] (physical, in [0, 1]) -> logits [B, K, H, W] and
``known`` [K] bool; the logits of unknown classes are ``ABSTAIN`` so they take no
probability. Without red and near-infrared bands the expert abstains on every class.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from landsegmenter.model.spectral_rule import CONCEPTS, concept_of, concept_scores, has_rule_bands, spectral_features
from landsegmenter.model.text_prompter import TextPrompter

ABSTAIN = -1.0e4
MIN_SIMILARITY = 0.8


class SpectralKnowledge(nn.Module):
    """``expert(reflectance, wavelengths, class_names, prompter) -> (logits [B, K, H, W], known [K])``."""

    def __init__(self, min_similarity: float = MIN_SIMILARITY) -> None:
        super().__init__()
        self.min_similarity = min_similarity
        self._keywords = [(concept, k) for concept, (keywords, _) in CONCEPTS.items() for k in keywords]
        self._cache: dict[tuple[tuple[str, ...], bool], list[str | None]] = {}

    def concepts(self, class_names: Sequence[str], prompter: TextPrompter | None) -> list[str | None]:
        """The concept of each class (None: no spectral knowledge), by keyword, else by text similarity."""
        key = (tuple(class_names), prompter is not None)
        if key not in self._cache:
            found = [concept_of(name) for name in class_names]
            missing = [i for i, c in enumerate(found) if c is None]
            if missing and prompter is not None:
                names = [class_names[i] for i in missing]
                similarity = prompter.text_embeddings(names) @ prompter.text_embeddings(
                    [k for _, k in self._keywords]).T  # [M, keywords]
                best, where = similarity.max(dim=1)
                for i, score, j in zip(missing, best.tolist(), where.tolist()):
                    if score >= self.min_similarity:
                        found[i] = self._keywords[j][0]
            self._cache[key] = found
        return self._cache[key]

    def class_precision(
        self, class_names: Sequence[str], prompter: TextPrompter | None, precision: dict[str, float]
    ) -> torch.Tensor:
        """[K] the measured precision of each class's concept (0: no concept, or none measured)."""
        return torch.tensor([precision.get(c, 0.0) if c else 0.0 for c in self.concepts(class_names, prompter)])

    def forward(
        self, reflectance: torch.Tensor, wavelengths: Sequence[float], class_names: Sequence[str],
        prompter: TextPrompter | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        b, _, h, w = reflectance.shape
        concepts = self.concepts(class_names, prompter)
        known = torch.tensor([c is not None for c in concepts], device=reflectance.device)
        if not has_rule_bands(wavelengths):
            known = torch.zeros_like(known)
        logits = reflectance.new_full((b, len(concepts), h, w), ABSTAIN)
        if known.any():
            wl = [float(v) for v in wavelengths]
            present = [c for c in concepts if c is not None]
            logits[:, known] = concept_scores(spectral_features(reflectance.float(), wl), present).to(logits.dtype)
        return logits, known
