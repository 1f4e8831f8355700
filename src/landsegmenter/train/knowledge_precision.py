"""The spectral-knowledge expert's precision per concept, measured on training labels.

Precision-guided fusion (``model/precision_fusion.py``) lets the expert's class win a pixel when
the expert's record on that class beats the decoder's probability. The record is measured here:
over the training samples, for each concept, the share of the pixels the expert assigns to it
(among the classes of the sample's own taxonomy) whose label is that class. Subsets labelled by
the spectral-index rule itself are left out (the rule would be checked against its own answers),
and a concept the expert assigns to fewer than ``MIN_PIXELS`` labelled pixels has no record.
"""
from __future__ import annotations

from collections import Counter
from typing import Iterable, Iterator

import torch

from landsegmenter.data.las_dataset import IGNORE_INDEX, LASDataset
from landsegmenter.las.rule_labels import RULE_PRODUCT
from landsegmenter.model.knowledge import SpectralKnowledge
from landsegmenter.model.landsegmenter import padded_size, pixels_with_data, reflectance_at
from landsegmenter.model.text_prompter import TextPrompter

MIN_PIXELS = 1000


def not_labelled_by_rule(dataset: LASDataset) -> Iterator[dict]:
    """The items of ``dataset`` whose subset's labels do not come from the spectral-index rule."""
    keep = [dataset.label_sources[name].get("product") != RULE_PRODUCT for name in dataset.subsets]
    return (dataset[i] for i, group in enumerate(dataset.group_ids) if keep[group])


@torch.inference_mode()
def concept_counts(samples: Iterable[dict], prompter: TextPrompter | None = None) -> tuple[Counter, Counter]:
    """(pixels the expert assigns to each concept, of those the ones whose label agrees) over
    LAS dataset items (image normalised with global reflectance statistics, label, wavelengths,
    class_names); ``prompter``: the model's, to name concepts as the model does."""
    expert = SpectralKnowledge()
    assigned, correct = Counter(), Counter()
    for item in samples:
        image = item["image"][None]
        (h, w), padded = image.shape[-2:], padded_size(image.shape[-2:])
        reflectance = reflectance_at(image, item["wavelengths"], padded)[..., :h, :w]
        logits, known = expert(reflectance, item["wavelengths"].tolist(), item["class_names"], prompter)
        if not known.any():
            continue
        choice = logits.argmax(dim=1)[0]
        labelled = (item["label"] != IGNORE_INDEX) & pixels_with_data(image, padded)[0, :h, :w]
        for k, concept in enumerate(expert.concepts(item["class_names"], prompter)):
            if concept is not None:
                mine = (choice == k) & labelled
                assigned[concept] += int(mine.sum())
                correct[concept] += int((mine & (item["label"] == k)).sum())
    return assigned, correct


def knowledge_precision(
    samples: Iterable[dict], prompter: TextPrompter | None = None, min_pixels: int = MIN_PIXELS
) -> dict[str, float]:
    """Per concept with at least ``min_pixels`` assigned pixels: its precision (4 decimals)."""
    assigned, correct = concept_counts(samples, prompter)
    return {c: round(correct[c] / n, 4) for c, n in sorted(assigned.items()) if n >= min_pixels}
