"""Measure the global reflectance statistics (``geo/data/reflectance_stats.yaml``) on a LAS store.

    python scripts/reflectance_stats.py build/las-mini [--split train] [-o src/landsegmenter/geo/data/reflectance_stats.yaml]

Every valid pixel of every reflective band (reflectance units, 0.35-2.5 µm outside the
absorption bands) of the chosen split is pooled at the nearest knot wavelength (the
Sentinel-2 window bands; within 0.06 µm, else left out); each subset weighs the same, so a
large subset does not set the statistics alone. Writes the knots with their sample counts.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import yaml

from landsegmenter.geo.reflectance import is_reflective
from landsegmenter.geo.sensors import get_sensor
from landsegmenter.las.store import SPLIT_CODES, LASStore

KNOTS_UM = (0.443, 0.490, 0.560, 0.665, 0.705, 0.740, 0.783, 0.842, 0.865, 1.610, 2.190)
MAX_DISTANCE_UM = 0.06
DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "src/landsegmenter/geo/data/reflectance_stats.yaml"


def subset_moments(sub, split: str) -> dict[int, tuple[float, float, int]]:
    """Per knot: (mean, mean of squares, pixels) of one subset's reflective bands."""
    info = sub.info
    units = get_sensor(info["sensor"]).units
    bands = info["bands"]
    scale, offset = np.array(bands["scale"]), np.array(bands["offset"])
    rows = np.flatnonzero(sub.array("split")[: sub.count] == SPLIT_CODES[split])
    sums: dict[int, list[float]] = {}
    for row in rows:
        image, valid, _ = sub.read(int(row))
        for c, wl in enumerate(bands["wavelengths"]):
            knot = int(np.argmin([abs(wl - k) for k in KNOTS_UM]))
            if not is_reflective(units, wl) or abs(KNOTS_UM[knot] - wl) > MAX_DISTANCE_UM:
                continue
            values = image[c][valid].astype(np.float64) * scale[c] + offset[c]
            acc = sums.setdefault(knot, [0.0, 0.0, 0])
            acc[0] += values.sum(); acc[1] += (values ** 2).sum(); acc[2] += values.size
    return {k: (s / n, q / n, n) for k, (s, q, n) in sums.items() if n}


def pooled(moments: list[dict[int, tuple[float, float, int]]]) -> list[dict]:
    knots = []
    for k, wl in enumerate(KNOTS_UM):
        parts = [m[k] for m in moments if k in m]
        if not parts:
            continue
        mean = float(np.mean([p[0] for p in parts]))
        square = float(np.mean([p[1] for p in parts]))
        knots.append({"wavelength": wl, "mean": round(mean, 5), "std": round(float(np.sqrt(square - mean ** 2)), 5),
                      "subsets": len(parts), "pixels": int(sum(p[2] for p in parts))})
    return knots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--split", default="train", choices=sorted(SPLIT_CODES))
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    store = LASStore.open(args.store)
    moments = [subset_moments(store.subset(name), args.split) for name in store.subsets]
    knots = pooled([m for m in moments if m])
    header = (f"# Global reflectance statistics per wavelength (µm), measured by scripts/reflectance_stats.py\n"
              f"# on the {args.split} split of the LAS store '{store.name}' ({args.store.name}); each subset weighs the same.\n")
    args.output.write_text(header + yaml.safe_dump({"store": store.name, "split": args.split, "knots": knots},
                                                   sort_keys=False))
    for row in knots:
        print(row, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
