"""Data-parallel training: ``landseg train`` with two CPU processes (DDP on gloo) on a real store."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time

import pytest
import torch

from landsegmenter.model.io import load_model
from landsegmenter.train.checkpoint import first_difference, with_defaults
from landsegmenter.train.config import TrainConfig, config_from_dict
from landsegmenter.train.datamodule import RankBatches
from landsegmenter.train.loop import weights_checksum
from landsegmenter.train.sampling import StepBatchSampler

from .conftest import REPO


def test_ranks_share_the_step_stream_without_overlap():
    group_ids = [0] * 10 + [1] * 7
    single = StepBatchSampler(group_ids, 2, seed=3)
    ranks = [StepBatchSampler(group_ids, 2, seed=3, rank=r, world_size=2, start_step=1) for r in range(2)]
    streams = [iter(s) for s in ranks]
    for step in range(1, 6):
        for r, stream in enumerate(streams):
            assert next(stream) == single.batch(step * 2 + r)
    assert [b for b, _ in zip(single, range(4))] == [single.batch(s) for s in range(4)]  # world 1 unchanged
    with pytest.raises(Exception, match="rank 2"):
        StepBatchSampler(group_ids, 2, rank=2, world_size=2)


def test_validation_batches_are_split_evenly_over_ranks():
    batches = [[0, 1], [2, 3], [4]]
    shares = [list(RankBatches(batches, r, 2)) for r in range(2)]
    assert shares == [[[0, 1], [4]], [[2, 3], [0, 1]]]  # padded by repeating the first batch


def test_parallel_settings_are_checked():
    with pytest.raises(Exception, match="trainer.strategy must be one of"):
        config_from_dict({"data": {"store": "s"}, "trainer": {"strategy": "fsdp"}})
    with pytest.raises(Exception, match="trainer.devices must be at least 1"):
        config_from_dict({"data": {"store": "s"}, "trainer": {"devices": 0}})


def test_two_cpu_processes_train_in_sync_on_distinct_batches(tiny_config, write_config, tmp_path):
    cfg = tiny_config(trainer={"max_steps": 3, "val_every": 2, "val_batches": 2, "checkpoint_every": 0,
                               "keep_checkpoints": "last", "devices": 2, "strategy": "ddp", "device": "cpu"},
                      optim={"schedule": "constant"})  # cosine ends at lr 0: a resumed step would not move
    config = write_config(cfg)
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LANDSEG_RANK_TRACE": "1", "PYTHONPATH": str(REPO / "src")}
    for name in ("RANK", "LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "MASTER_PORT"):
        env.pop(name, None)

    def landseg_train(*options: str) -> float:
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "landsegmenter.cli", "train", "--config", str(config), "--output", str(out),
             "--quiet", *options], env=env, capture_output=True, text=True, timeout=150,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        return time.perf_counter() - start

    print(f"2-process DDP run: {landseg_train():.1f} s")

    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step-000003"]  # one, from rank 0
    checkpoint = load_model(out / "checkpoints" / "step-000003", preset="tiny")
    model = load_model(out / "model", preset="tiny")
    traces = [json.loads((out / "rank-trace" / f"rank-{r}.json").read_text()) for r in range(2)]
    assert [(t["rank"], t["world_size"]) for t in traces] == [(0, 2), (1, 2)]
    assert [len(t["steps"]) for t in traces] == [3, 3]
    for a, b in zip(traces[0]["steps"], traces[1]["steps"]):
        assert a["samples"] != b["samples"]  # each step, the ranks trained on different batches
    assert traces[0]["weights_sha256"] == traces[1]["weights_sha256"] == weights_checksum(checkpoint)
    assert weights_checksum(model) == weights_checksum(checkpoint)
    header = next((out / "logs").rglob("metrics.csv")).read_text().splitlines()[0].split(",")
    assert {"train/loss", "val/loss", "val/miou"} <= set(header)
    assert torch.isfinite(torch.stack([p.detach().float().sum() for p in model.parameters()])).all()

    # every rank resumes from the latest checkpoint; rank 0 alone checks the directory
    print(f"2-process DDP resume: {landseg_train('--resume', '--max-steps', '4'):.1f} s")
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step-000004"]
    traces = [json.loads((out / "rank-trace" / f"rank-{r}.json").read_text()) for r in range(2)]
    assert [[step["step"] for step in t["steps"]] for t in traces] == [[4], [4]]
    assert traces[0]["weights_sha256"] == traces[1]["weights_sha256"] == weights_checksum(load_model(out / "model"))
    assert traces[0]["weights_sha256"] != weights_checksum(checkpoint)


def test_runs_from_before_the_parallel_settings_resume(tmp_path):
    saved = dataclasses.asdict(config_from_dict({"data": {"store": "s"}}))
    current = dataclasses.asdict(config_from_dict({"data": {"store": "s"}}))
    for key in ("devices", "num_nodes", "strategy"):
        del saved["trainer"][key]
    assert first_difference(with_defaults(saved, dataclasses.asdict(TrainConfig())), current) is None
    current["trainer"]["devices"] = 2
    assert first_difference(with_defaults(saved, dataclasses.asdict(TrainConfig())), current) == \
        "trainer.devices: 1 -> 2"
