"""The tiny preset can fit a fixed small batch of real data: the loss, the optimiser and the model learn."""
from __future__ import annotations

import torch

from landsegmenter.data.las_dataset import LASDataset, collate_las
from landsegmenter.model.presets import build_model
from landsegmenter.train.module import SegmenterModule


def test_tiny_model_overfits_a_fixed_batch(train_store, tiny_config):
    cfg = tiny_config(optim={"lr": 3e-3, "warmup_steps": 0, "schedule": "constant", "weight_decay": 0.0},
                      trainer={"max_steps": 30})
    data = LASDataset(train_store, subsets=["dw"])
    batch = collate_las([data[0], data[1]])  # two 64 x 64 Sentinel-2 patches, Dynamic World labels
    torch.manual_seed(0)
    module = SegmenterModule(build_model("tiny"), cfg)
    optimizer = module.configure_optimizers()["optimizer"]
    losses = []
    for _ in range(30):
        terms, _ = module.compute_loss(batch, None)
        optimizer.zero_grad()
        terms.total.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), cfg.optim.grad_clip)
        optimizer.step()
        losses.append(terms.total.item())
    assert losses[-1] < 0.5 * losses[0], losses
