"""Training-loop parts: freezing, the schedule, the step-indexed sampler, mIoU."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from landsegmenter.errors import LandSegError
from landsegmenter.model.io import load_model
from landsegmenter.model.presets import build_model
from landsegmenter.train import train
from landsegmenter.train.module import SegmenterModule, mean_iou, parameter_groups, warmup_cosine
from landsegmenter.train.sampling import StepBatchSampler


def test_backbone_is_frozen_for_the_first_steps(tiny_config):
    module = SegmenterModule(build_model("tiny"), tiny_config(freeze={"backbone_steps": 3,
                                                                      "modules": ["image_encoder.neck"]}))
    backbone, neck = module.model.image_encoder.backbone, module.model.image_encoder.neck
    module.model.train()
    module.apply_freeze(2)
    assert not any(p.requires_grad for p in backbone.parameters()) and not backbone.training
    module.apply_freeze(3)
    assert all(p.requires_grad for p in backbone.parameters()) and backbone.training
    assert not any(p.requires_grad for p in neck.parameters()) and not neck.training
    with pytest.raises(LandSegError, match="no module 'image_encoder.trunk'"):
        SegmenterModule(build_model("tiny"), tiny_config(freeze={"modules": ["image_encoder.trunk"]}))


def test_a_frozen_backbone_does_not_move(tiny_config, tmp_path):
    torch.manual_seed(0)
    cfg = tiny_config(freeze={"backbone_steps": -1}, trainer={"max_steps": 2, "val_every": 0})
    result = train(cfg, output=tmp_path / "run", quiet=True)
    torch.manual_seed(0)
    start, tuned = build_model("tiny").state_dict(), load_model(result.model_dir).state_dict()
    backbone = [k for k in start if k.startswith("image_encoder.backbone.")]
    assert backbone and all(torch.equal(start[k], tuned[k]) for k in backbone)
    assert any(not torch.equal(start[k], tuned[k]) for k in start if k.startswith("decoder."))


def test_parameter_groups_leave_out_the_text_encoder_and_scale_the_backbone():
    model = build_model("tiny")
    groups = parameter_groups(model, 1e-3, 0.05, 0.1)
    grouped = {id(p) for g in groups for p in g["params"]}
    text = {id(p) for p in model.prompter.encoder.parameters()}
    assert not grouped & text
    assert len(grouped) == sum(1 for n, _ in model.named_parameters() if not n.startswith("prompter.encoder"))
    backbone = {id(p) for p in model.image_encoder.backbone.parameters()}
    for group in groups:
        ids = {id(p) for p in group["params"]}
        assert group["lr"] == pytest.approx(1e-4 if ids <= backbone else 1e-3)
        assert group["weight_decay"] in (0.0, 0.05)


def test_warmup_cosine_schedule():
    factor = warmup_cosine(2, 10)
    assert [factor(s) for s in (0, 1)] == [0.5, 1.0]
    assert factor(2) == pytest.approx(1.0) and factor(6) == pytest.approx(0.5) and factor(10) == pytest.approx(0.0)
    assert warmup_cosine(0, 10, cosine=False)(7) == 1.0


def test_step_sampler_batches_depend_only_on_seed_and_step():
    groups = np.array([0] * 5 + [1] * 3)
    run = StepBatchSampler(groups, 2, seed=4)
    first = [batch for batch, _ in zip(run, range(12))]
    resumed = StepBatchSampler(groups, 2, seed=4, start_step=7)
    assert [batch for batch, _ in zip(resumed, range(5))] == first[7:]
    for batch in first:
        assert len({groups[i] for i, _ in batch}) == 1  # one group per batch
    epoch = sorted(i for batch in first[: run.batches_per_epoch()] for i, _ in batch)
    assert epoch == list(range(8))  # every sample once per data epoch
    assert first[: run.batches_per_epoch()] != first[run.batches_per_epoch() : 2 * run.batches_per_epoch()]
    mixed = StepBatchSampler(groups, 4, seed=4, grouped=False)
    assert any(len({groups[i] for i, _ in mixed.batch(s)}) == 2 for s in range(6))


def test_mean_iou_over_classes_in_the_reference():
    confusion = torch.tensor([[3, 1, 0], [0, 2, 0], [0, 0, 0]])  # class 2 absent from the reference
    assert mean_iou(confusion) == pytest.approx((3 / 4 + 2 / 3) / 2)
    assert np.isnan(mean_iou(torch.zeros(2, 2)))
