"""Training throughput on this machine: model steps vs the data loader.

Model rows: samples/s of full training steps (forward of both heads, loss,
backward, AdamW step) on a synthetic batch of ``--batch`` 13-band
``--size`` x ``--size`` Sentinel-2-like images with K = 9 classes, per preset,
on the CPU (fp32) unless ``--device`` says otherwise. Loader row: samples/s of
the training DataLoader alone (LAS store reads, normalisation, geometric
augmentation, collation) with ``--workers`` workers, batches of ``--batch``.
The loader is not the bottleneck when its row is well above every model row.

    python benchmarks/train_throughput.py --store build/las-mini
"""
from __future__ import annotations

import argparse
import time

import torch
from torch.utils.data import DataLoader

from landsegmenter.data.las_dataset import LASDataset, collate_las
from landsegmenter.geo.sensors import get_sensor
from landsegmenter.model.presets import build_model
from landsegmenter.taxonomy.legends import get_legend
from landsegmenter.train.config import AugmentSection, DataSection, TrainConfig, TrainerSection
from landsegmenter.train.datamodule import AugmentedDataset
from landsegmenter.train.module import SegmenterModule
from landsegmenter.train.sampling import StepBatchSampler


def synthetic_batch(batch: int, size: int, device: torch.device) -> dict:
    wavelengths = torch.tensor(get_sensor("sentinel2_l1c").wavelengths)
    names = list(get_legend("dynamic_world").names)
    generator = torch.Generator().manual_seed(0)
    return {
        "image": torch.randn(batch, len(wavelengths), size, size, generator=generator).to(device),
        "label": torch.randint(0, len(names), (batch, size, size), generator=generator).to(device),
        "wavelengths": wavelengths.expand(batch, -1).to(device),
        "band_mask": torch.ones(batch, len(wavelengths), dtype=torch.bool),
        "class_names": [names] * batch,
        "class_mask": torch.ones(batch, len(names), dtype=torch.bool),
        "subset": ["synthetic"] * batch,
    }


def model_throughput(preset: str, batch: dict, steps: int, warmup: int, device: torch.device) -> float:
    cfg = TrainConfig(data=DataSection(store="-"), trainer=TrainerSection(max_steps=steps + warmup))
    module = SegmenterModule(build_model(preset), cfg).to(device).train()
    optimizer = module.configure_optimizers()["optimizer"]
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    for step in range(warmup + steps):
        if step == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        with autocast:
            terms, _ = module.compute_loss(batch, None)
        optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * len(batch["subset"]) / (time.perf_counter() - start)


def loader_throughput(store: str, batch: int, workers: int, batches: int, crop: int | None) -> tuple[float, str]:
    data = LASDataset(store)
    sampler = StepBatchSampler(data.group_ids, batch, seed=0)
    dataset = AugmentedDataset(data, AugmentSection(crop_size=crop))
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_las, num_workers=workers,
                        persistent_workers=False)
    iterator = iter(loader)
    next(iterator)  # worker start-up is not throughput
    start, samples, sizes = time.perf_counter(), 0, set()
    for _ in range(batches):
        item = next(iterator)
        samples += item["image"].shape[0]
        sizes.add(item["image"].shape[-1])
    seconds = time.perf_counter() - start
    del iterator
    return samples / seconds, f"{len(data)} samples, patches {'/'.join(str(s) for s in sorted(sizes))} px"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default="tiny,default")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per preset")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--store", default="build/las-mini", help="LAS store for the loader row")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--loader-batches", type=int, default=40)
    parser.add_argument("--crop", type=int, default=None, help="random crop in the loader (default: none)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    batch = synthetic_batch(args.batch, args.size, device)
    rows = []
    for preset in args.presets.split(","):
        rate = model_throughput(preset, batch, args.steps, args.warmup, device)
        rows.append((f"train step, {preset}", rate, f"{args.batch} x 13 x {args.size}^2, K=9, {device.type}"))
    rate, detail = loader_throughput(args.store, args.batch, args.workers, args.loader_batches, args.crop)
    rows.append((f"DataLoader only, {args.workers} workers", rate, detail))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    print("| what | samples/s | setting |\n|---|---:|---|")
    for name, value, setting in rows:
        print(f"| {name} | {value:.2f} | {setting} |")
    fastest = max(r[1] for r in rows[:-1])
    print(f"\nthe loader delivers {rows[-1][1] / fastest:.0f}x the samples/s of the fastest model row")


if __name__ == "__main__":
    main()
