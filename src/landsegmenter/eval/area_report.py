"""``landseg areas``: error-adjusted areas of a class map from its labelled reference sample.

Reads the map's mapped area per class (hectares, or pixels for a map without a CRS), looks
the map class up at every sample point, matches the reference labels to the map classes,
and writes ``areas.json``, ``areas.md`` and ``areas.png`` (mapped vs estimated area with
95 % confidence intervals). Everything is checked and rendered before the first file is
written, so a bad sample leaves no report behind. The strata weights are the mapped areas;
on a geographic grid pixels differ in area with latitude, which the estimator (equal-probability
pixels within a stratum) neglects inside a stratum.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import rasterio

from landsegmenter.errors import LandSegError
from landsegmenter.eval.area_estimation import AreaEstimate, estimate_areas
from landsegmenter.eval.compare import map_class_names
from landsegmenter.eval.sample_files import ReferenceSample, read_sample
from landsegmenter.geo.cog import atomic_write_bytes
from landsegmenter.geo.raster import Grid, open_raster
from landsegmenter.infer.reports import class_areas
from landsegmenter.taxonomy.labels import labels_to_classes

REPORT_FILES = ("areas.json", "areas.md", "areas.png")


def estimate_map_areas(class_map: str | Path, sample_path: str | Path,
                       column: str = "reference") -> tuple[AreaEstimate, str]:
    """The estimate and its area unit (``"ha"`` or ``"pixels"``)."""
    names = map_class_names(class_map)
    sample = read_sample(sample_path, column)
    with open_raster(str(class_map)) as src:
        grid = Grid(src.width, src.height, src.crs, src.transform)
        check_same_crs(sample, src.crs, class_map)
        mapped = sample_map_values(src, sample, len(names))
    check_drawn_from_this_map(sample, mapped, names)
    reference = labels_to_classes(sample.labels, names, what=f"reference labels of {Path(sample_path).name}")
    counts = np.zeros((len(names), len(names)), np.int64)
    np.add.at(counts, (mapped, np.asarray(reference)), 1)
    rows = class_areas(Path(class_map), grid, names)
    unit = "ha" if grid.crs is not None else "pixels"
    areas = [r["hectares"] if unit == "ha" else r["pixels"] for r in rows]
    return estimate_areas(counts, areas, names), unit


def check_same_crs(sample: ReferenceSample, crs, class_map) -> None:
    if sample.crs is None or crs is None:
        if sample.crs is not None and crs is None:
            raise LandSegError(f"{sample.path} has a CRS but {class_map} has none: not a sample of this map")
        return
    if sample.crs != crs:
        raise LandSegError(f"{sample.path} is in {_crs_name(sample.crs)} but {class_map} in {_crs_name(crs)}: "
                           "use the sample drawn from this map (landseg sample), or reproject it to the map's CRS")


def _crs_name(crs) -> str:
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_string()[:60]


def sample_map_values(src, sample: ReferenceSample, k: int) -> np.ndarray:
    """The map class under each point; points off the map or on nodata are refused."""
    rows, cols = rasterio.transform.rowcol(src.transform, sample.x, sample.y)
    rows, cols = np.asarray(rows), np.asarray(cols)
    inside = (rows >= 0) & (rows < src.height) & (cols >= 0) & (cols < src.width)
    if not inside.all():
        off = [sample.ids[i] for i in np.flatnonzero(~inside)]
        raise LandSegError(f"{len(off)} points of {sample.path} lie outside the map (ids {', '.join(off[:8])}); "
                           "is it a sample of another map?")
    values = np.array([src.read(1, window=((r, r + 1), (c, c + 1)))[0, 0] for r, c in zip(rows, cols)], np.int64)
    nodata = values >= k
    if nodata.any():
        bad = [sample.ids[i] for i in np.flatnonzero(nodata)]
        raise LandSegError(f"{len(bad)} points of {sample.path} fall on nodata of the map (ids {', '.join(bad[:8])})")
    return values


def check_drawn_from_this_map(sample: ReferenceSample, mapped: np.ndarray, names: list[str]) -> None:
    if sample.map_class is None:
        return
    differ = [i for i, (given, v) in enumerate(zip(sample.map_class, mapped)) if given != names[v]]
    if differ:
        i = differ[0]
        raise LandSegError(
            f"{len(differ)} points of {sample.path} have a map_class other than the map's class there "
            f"(id {sample.ids[i]}: {sample.map_class[i]!r}, map: {names[mapped[i]]!r}); is it a sample of another map?"
        )


# --- the report -----------------------------------------------------------------------
def write_area_report(estimate: AreaEstimate, unit: str, outdir: str | Path, title: str,
                      overwrite: bool = False) -> list[Path]:
    """``areas.json``, ``areas.md``, ``areas.png`` in ``outdir``; rendered first, then each written atomically."""
    out = Path(outdir)
    if out.exists() and not out.is_dir():
        raise LandSegError(f"output path {out} exists and is not a directory")
    if any((out / name).exists() for name in REPORT_FILES) and not overwrite:
        raise LandSegError(f"{out} already holds an area report; pass --overwrite to replace it")
    payload = {"title": title, **estimate.to_dict(unit)}
    files = {
        "areas.json": (json.dumps(payload, indent=2, ensure_ascii=False) + "\n").encode(),
        "areas.md": markdown(estimate, unit, title).encode(),
        "areas.png": area_chart(estimate, unit, title),
    }
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        atomic_write_bytes(out / name, data)
    return [out / name for name in files]


def _num(value: float, digits: int = 0) -> str:
    return "–" if not np.isfinite(value) else f"{value:,.{digits}f}"


def _pct(value: float, se: float) -> str:
    if not np.isfinite(value):
        return "–"
    return f"{100 * value:.1f} ± {100 * 1.96 * se:.1f}"


def markdown(e: AreaEstimate, unit: str, title: str) -> str:
    digits = 1 if unit == "ha" else 0
    lines = [
        f"## {title}",
        "",
        f"Stratified estimator of Olofsson et al. (2014), {int(e.counts.sum())} sample points; "
        f"± is the 95 % confidence interval. Overall accuracy **{_pct(e.overall, e.overall_se)} %**.",
        "",
        f"| class | points | mapped area ({unit}) | estimated area ({unit}) | user's acc. (%) | producer's acc. (%) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for k, name in enumerate(e.class_names):
        estimated = f"{_num(e.area[k], digits)} ± {_num(e.z * e.area_se[k], digits)}"
        lines.append(f"| {name} | {int(e.counts[k].sum())} | {_num(e.mapped_area[k], digits)} | {estimated} | "
                     f"{_pct(e.users[k], e.users_se[k])} | {_pct(e.producers[k], e.producers_se[k])} |")
    lines += ["", "Error matrix in proportions of area (rows: map, columns: reference):", "",
              "| map \\ reference | " + " | ".join(e.class_names) + " |",
              "|---|" + "---:|" * len(e.class_names)]
    for k, name in enumerate(e.class_names):
        lines.append(f"| {name} | " + " | ".join(f"{v:.4f}" for v in e.proportions[k]) + " |")
    return "\n".join(lines) + "\n"


def area_chart(e: AreaEstimate, unit: str, title: str) -> bytes:
    """PNG bar chart: mapped and estimated area per class, the estimate with CI whiskers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(e.class_names)
    x = np.arange(k)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * k + 2), 4.5))
    ax.bar(x - 0.2, e.mapped_area, width=0.4, label="mapped", color="#9e9e9e")
    ax.bar(x + 0.2, e.area, width=0.4, yerr=e.z * e.area_se, capsize=4, label="estimated (95 % CI)",
           color="#1f77b4", error_kw={"elinewidth": 1.2})
    ax.set_xticks(x, e.class_names, rotation=30 if k > 4 else 0, ha="right" if k > 4 else "center")
    ax.set_ylabel(f"area ({unit})")
    ax.set_title(title, fontsize=10)
    ax.legend()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()
