"""Evaluating a segmenter on a benchmark dataset or on a scene with a reference map."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from landsegmenter.errors import LandSegError
from landsegmenter.eval.compare import check_reference, compare_maps
from landsegmenter.geo.raster import Scene
from landsegmenter.eval.metrics import ConfusionMatrix, Report, report
from landsegmenter.infer.mapper import map_scene
from landsegmenter.model.landsegmenter import fusion_set
from landsegmenter.model.protocol import Segmenter
from landsegmenter.taxonomy.legends import Legend


def variants(segmenter: Segmenter) -> dict[str, str | None]:
    """The decoder alone, with the similarity head, and with every expert (when that adds the
    spectral-knowledge one) for models with fusion; one plain run otherwise."""
    if not hasattr(segmenter, "fusion"):
        return {"model": None}
    runs = {"fusion_off": "off", "fusion_on": "on"}
    if getattr(segmenter, "normalisation", "auto") == "reflectance":
        runs = {"fusion_off": "off", "fusion_similarity": "similarity", "fusion_on": "on"}
    return runs


def _prompts(class_names: Sequence[str], prompts: Sequence[str] | None) -> list[str]:
    if prompts is None:
        return list(class_names)
    if len(prompts) != len(class_names):
        raise LandSegError(f"{len(prompts)} class prompts given for {len(class_names)} classes ({', '.join(class_names)})")
    return list(prompts)


@torch.inference_mode()
def evaluate_dataset(
    segmenter: Segmenter,
    dataset,
    *,
    prompts: Sequence[str] | None = None,
    device: str | torch.device = "cpu",
    limit: int | None = None,
    progress: bool = True,
) -> Report:
    """Confusion-matrix report over ``dataset`` samples (dicts with ``image``, ``label``, ``wavelengths``).

    Follows the dataset's ``evaluation`` protocol when it has one (scored classes, groups,
    classes averaged into the mean).
    """
    if not getattr(segmenter, "normalise", True):
        raise LandSegError("this model takes physical values; evaluate it on a scene with --scene and --reference")
    names = list(dataset.class_names)
    text = _prompts(names, prompts)
    protocol = getattr(dataset, "evaluation", None)
    table = protocol.lookup_table() if protocol is not None else np.append(np.arange(255), 255).astype(np.uint8)
    scored = list(protocol.scored_classes) if protocol is not None else names
    cm = ConfusionMatrix(len(scored))
    count = len(dataset) if limit is None else min(limit, len(dataset))
    for i in tqdm(range(count), unit="sample", disable=not progress, desc="evaluating"):
        sample = dataset[i]
        image = sample["image"][None].to(device)
        logits = segmenter(image, sample["wavelengths"].to(device), text)
        pred = logits.argmax(dim=1)[0].cpu().numpy().astype(np.int64)
        label = sample["label"].numpy().astype(np.int64)
        cm.update(table[np.clip(pred, 0, 255)], table[np.clip(label, 0, 255)])
    return report(cm.matrix, scored, mean_over=None if protocol is None else protocol.mean_over)


def evaluate_scene(
    segmenter: Segmenter,
    scene: str | Sequence[str],
    reference: str | Path,
    legend: Legend,
    outdir: Path,
    *,
    prompts: Sequence[str] | None = None,
    fusion: str | bool | None = None,
    **map_options,
) -> Report:
    """Map ``scene`` with the legend's class names (or ``prompts``) and compare with ``reference``.

    The reference is checked first (readable, on a grid that overlaps the scene, with codes
    of ``legend``), so a reference that cannot be compared costs no map.
    """
    text = _prompts(legend.names, prompts)
    scene_options = {k: map_options[k] for k in ("sensor", "bands", "wavelengths", "resolution") if k in map_options}
    with Scene(scene, **scene_options) as stack:
        check_reference(reference, legend, stack.grid)
    with fusion_set(segmenter, fusion):
        result = map_scene(scene, text, outdir, model=segmenter, overwrite=True, **map_options)
    return compare_maps(result.classes, reference, legend, by_index=prompts is not None)
