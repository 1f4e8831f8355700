"""Parameter counts and CPU forward time of the model presets.

Forward time: one 512 x 512 tile, batch 1, 7 classes, 13 Sentinel-2 bands,
``torch.set_num_threads(2)``, inference mode, after one warm-up pass (which
also fills the per-taxonomy text cache); the median of ``--repeats`` runs.
Reported: median and fastest wall time, and the process CPU time (all threads)
per forward. Random weights (pretrained backbones where configured): this
measures cost, not accuracy.

Run: ``python benchmarks/model_presets.py [--presets tiny default paper] [--backbones]``.
``--backbones`` also times the default preset with each candidate backbone.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from landsegmenter.model.clip_text import ClipTextConfig, ClipTextTransformer
from landsegmenter.model.presets import PRESETS, build_model

S2_WAVELENGTHS = [0.443, 0.490, 0.560, 0.665, 0.705, 0.740, 0.783, 0.842, 0.865, 0.945, 1.375, 1.610, 2.190]
CLASSES = ["water", "tree cover", "cropland", "grassland", "built-up", "bare ground", "wetland"]
BACKBONE_CANDIDATES = {
    "efficientnet-lite0": {"backbone": "efficientnet-lite0", "pretrained": None},
    "efficientnet-lite2": {"backbone": "efficientnet-lite2", "pretrained": None},
    "efficientnet-b4": {"backbone": "efficientnet-b4", "pretrained": None},
    "hiera-tiny": {"backbone": "hiera", "hiera_size": "tiny", "pretrained": None},
}


def parameter_counts(model: torch.nn.Module) -> tuple[int, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable


def forward_seconds(model: torch.nn.Module, size: int, repeats: int) -> tuple[float, float, float]:
    """(median wall, fastest wall, median process CPU) seconds per forward.

    On a shared machine the wall time includes waiting for other processes;
    the process CPU time (summed over threads) does not.
    """
    image = torch.randn(1, len(S2_WAVELENGTHS), size, size)
    wavelengths = torch.tensor(S2_WAVELENGTHS)
    walls, cpus = [], []
    with torch.inference_mode():
        model(image, wavelengths, CLASSES)  # warm-up
        for _ in range(repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            model(image, wavelengths, CLASSES)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
    return statistics.median(walls), min(walls), statistics.median(cpus)


def measure(name: str, size: int, repeats: int, **overrides) -> dict:
    model = build_model(name.split("+")[0], **overrides).eval()
    total, trainable = parameter_counts(model)
    median, fastest, cpu = forward_seconds(model, size, repeats)
    return {
        "preset": name,
        "backbone": model.config.image.backbone,
        "text_encoder": model.config.text.encoder,
        "params_total_m": round(total / 1e6, 2),
        "params_trainable_m": round(trainable / 1e6, 2),
        "forward_s": round(median, 3),
        "forward_min_s": round(fastest, 3),
        "forward_cpu_s": round(cpu, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=PRESETS)
    parser.add_argument("--backbones", action="store_true", help="also time candidate backbones for 'default'")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    rows = [measure(p, args.size, args.repeats) for p in args.presets]
    if args.backbones:
        for label, image in BACKBONE_CANDIDATES.items():
            rows.append(measure(f"default+{label}", args.size, args.repeats, image=image))
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{args.size}x{args.size} tile, batch 1, K={len(CLASSES)}, C={len(S2_WAVELENGTHS)}, {args.threads} threads")
    print(
        f"{'preset':28} {'backbone':20} {'text':7} {'total M':>8} {'train M':>8} "
        f"{'median s':>9} {'min s':>7} {'CPU s':>7}"
    )
    for r in rows:
        print(
            f"{r['preset']:28} {r['backbone']:20} {r['text_encoder']:7} {r['params_total_m']:8.2f} "
            f"{r['params_trainable_m']:8.2f} {r['forward_s']:9.3f} {r['forward_min_s']:7.3f} {r['forward_cpu_s']:7.3f}"
        )
    if "paper" in args.presets:
        clip_params = sum(p.numel() for p in ClipTextTransformer(ClipTextConfig()).parameters())
        print(
            f"paper with its CLIP ViT-B-32 text tower instead of MiniLM: {clip_params / 1e6:.2f} M frozen text "
            "parameters replace MiniLM's 22.71 M; text embeddings are cached per taxonomy, so forward time is unchanged"
        )


if __name__ == "__main__":
    main()
