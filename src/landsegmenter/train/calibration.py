"""Temperature scaling of the decoder (Guo et al. 2017, "On calibration of modern neural networks").

A network trained with cross-entropy tends to be over-confident on data unlike its training
set. The class-wise confidence-guided fusion hands a class to the other experts in proportion
to the decoder's doubt, so that doubt should mean what it says: one temperature T divides the
decoder logits, fitted to minimise the negative log-likelihood of held-out labels (argmax maps
are unchanged; probabilities, the confidence raster and the fusion weights are calibrated).
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F

from landsegmenter.data.las_dataset import IGNORE_INDEX
from landsegmenter.model.landsegmenter import LandSegmenter

TEMPERATURES = np.exp(np.linspace(np.log(0.25), np.log(8.0), 61))  # 6 % steps
PIXEL_STRIDE = 7  # every 7th labelled pixel of a patch: neighbours say nearly the same


@torch.inference_mode()
def held_out_logits(model: LandSegmenter, samples: Iterable[dict]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per sample: uncalibrated decoder logits [N, K] and labels [N] of a subsample of its labelled pixels."""
    pairs = []
    for item in samples:
        out = model.forward_train(item["image"][None], item["wavelengths"], item["class_names"])
        logits = out.decoder_logits[0].flatten(1).T.float()  # forward_train: before the temperature
        labels = item["label"].flatten()
        pick = torch.nonzero(labels != IGNORE_INDEX).flatten()[::PIXEL_STRIDE]
        if len(pick):
            pairs.append((logits[pick], labels[pick]))
    return pairs


def negative_log_likelihood(pairs: list[tuple[torch.Tensor, torch.Tensor]], temperature: float) -> float:
    total = sum(F.cross_entropy(logits / temperature, labels, reduction="sum").item() for logits, labels in pairs)
    return total / max(1, sum(len(labels) for _, labels in pairs))


def fit_temperature(model: LandSegmenter, samples: Iterable[dict]) -> tuple[float, dict[str, float]]:
    """The temperature (from a log grid of 0.25-8) of least held-out NLL, with the NLL before and after."""
    pairs = held_out_logits(model, samples)
    if not pairs:
        return 1.0, {}
    scores = [negative_log_likelihood(pairs, float(t)) for t in TEMPERATURES]
    best = float(TEMPERATURES[int(np.argmin(scores))])
    return round(best, 3), {"nll_t1": round(negative_log_likelihood(pairs, 1.0), 4), "nll": round(min(scores), 4),
                            "pixels": int(sum(len(labels) for _, labels in pairs))}
