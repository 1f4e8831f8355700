"""The dataset card of a LAS store: samples per subset and split, class histograms, a map.

``dataset_card(store)`` returns Markdown; ``plot_locations(store, png)`` draws the patch
centres on a lon/lat plot (hollow markers: approximate locations of imagery without
georeferencing). Both only read the store's small arrays and attributes.
"""
from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from landsegmenter.las.exclusion import haversine_km
from landsegmenter.las.store import SPLIT_CODES, LASStore, SubsetStore

FORMAT_NOTE = """\
## Storage format

One Zarr v3 group per subset, one chunk per sample: `image [N, C, H, W]` (DN with a
per-band scale/offset to physical units, or float32 physical values), `valid [N, H, W]`,
`label [N, H, W]` (uint8 legend index, 255 = no label) and small per-sample arrays
(scene, split, patch origin, affine transform, centre lon/lat, class pixel counts). The
subset's attributes hold the band table (names, wavelengths, scaling, normalisation
statistics), the taxonomy (legend key and class names), the label source, and one
record per scene (CRS WKT, grid, dates, time gap image - label product, files).

Why one chunk per sample rather than sharded chips + a Parquet index: a training
`DataLoader` reads random samples, so the unit of I/O should be the sample; with one
chunk per sample a read touches exactly one compressed object per array, needs no
index lookup or shard footer, and appending is a resize plus new chunk files, so
builds stream and resume without rewriting anything. Subsets with different band
counts, patch sizes and taxonomies are simply different groups. Sharded chips
(many samples per file) pay off for object stores and millions of samples, where the
file count hurts; Zarr v3 offers sharding for that case without changing the reading
code, and the per-sample metadata that a Parquet table would hold lives here in
typed arrays and attributes of the same store, so there is one thing to copy.

## Loading

`landsegmenter.data.las_dataset.LASDataset(store, splits=("train",))` yields dicts with
`image` (float32 [C, H, W], normalised with the stored per-band statistics, 0 where the
image has no data), `label` (int64 [H, W], 255 = ignore), `wavelengths` [C],
`class_names`, `subset`, `sample_id`; low-quality subsets are left out unless
`include_low_quality=True`. Batches: `GroupedBatchSampler(dataset.group_ids, B)` keeps
one subset per batch (same bands, size and classes, nothing padded); `collate_las` also
batches mixed subsets by padding bands (`band_mask`), patches (label 255) and classes
(`class_mask`), so every sample keeps its own class names.
"""


def describe_store(path: str | Path, png: str | Path | None = None, markdown: str | Path | None = None) -> str:
    """The card of the store at ``path``; draws the map (default ``path/sample_locations.png``), writes ``markdown``."""
    store = LASStore.open(path)
    drawn = plot_locations(store, png or Path(path) / "sample_locations.png")
    card_dir = Path(markdown).resolve().parent if markdown else Path.cwd()
    card = dataset_card(store, png_name=os.path.relpath(drawn.resolve(), card_dir))
    if markdown:
        Path(markdown).write_text(card, encoding="utf-8")
    return card


def subset_summary(sub: SubsetStore) -> dict[str, Any]:
    """Counts per split, class pixel totals and the recorded provenance of one subset."""
    n = sub.count
    split = sub.array("split")[:n]
    counts = sub.array("class_counts")[:n]
    info, attrs = sub.info, sub.attrs
    return {
        "name": sub.name,
        "samples": n,
        "splits": {name: int((split == code).sum()) for name, code in SPLIT_CODES.items()},
        "class_pixels": dict(zip(sub.class_names, counts.sum(axis=0).astype(int).tolist())),
        "info": info,
        "scenes": attrs.get("scenes", []),
        "stats": attrs.get("stats", {}),
        "complete": bool(attrs.get("complete")),
    }


def dataset_card(store: LASStore, png_name: str | None = None) -> str:
    """The Markdown card of ``store``; ``png_name`` is linked as the map of sample locations."""
    summaries = [subset_summary(store.subset(name)) for name in store.subsets]
    parts = [f"# {store.name}\n"]
    if store.description:
        parts.append(store.description.strip() + "\n")
    parts.append(_at_a_glance(summaries))
    parts.append(_overview(summaries))
    if png_name:
        parts.append(f"## Sample locations\n\n![sample locations]({png_name})\n\n{_locations_note(summaries)}\n")
    parts.append(_histograms(summaries))
    parts.append(_subset_details(summaries))
    parts.append(FORMAT_NOTE)
    return "\n".join(parts)


PLACE_RADIUS_KM = 25.0  # scene centres closer than this count as one place


def _at_a_glance(summaries: list[dict[str, Any]]) -> str:
    """Counts of patches, places, sensors, label products and classes over all subsets."""
    infos = [s["info"] for s in summaries]
    sensors = sorted({i["sensor"] for i in infos if i["sensor"] and not i.get("simulated_from")})
    simulated: dict[str, set[str]] = defaultdict(set)
    products: dict[str, list[str]] = defaultdict(list)
    for i in infos:
        if i.get("simulated_from"):
            simulated[i["sensor"]].add(i["simulated_from"])
        products[i["taxonomy"]["key"]].append(i["label_source"]["kind"])
    class_names = {name for i in infos for name in i["taxonomy"]["class_names"]}
    located = [tuple(sc["location"]) for s in summaries for sc in s["scenes"] if sc.get("location")]
    unlocated = sum(1 for s in summaries for sc in s["scenes"] if not sc.get("location"))
    lines = [
        "## At a glance\n",
        f"* **{_plural(sum(s['samples'] for s in summaries), 'patch')}** in {_plural(len(summaries), 'subset')}",
        f"* **{_plural(count_places(located), 'place')}** (scene centres more than {PLACE_RADIUS_KM:.0f} km apart)"
        + (f", plus {unlocated} scenes without a known location" if unlocated else ""),
        f"* **{_plural(len(sensors), 'sensor')}**: {', '.join(sensors)}"
        + (
            f"; **{len(simulated)} simulated**: "
            + ", ".join(f"{name} (from {', '.join(sorted(src))})" for name, src in sorted(simulated.items()))
            if simulated
            else ""
        ),
        f"* **{_plural(len(products), 'label product')}** (one legend each): "
        + ", ".join(_product_text(key, kinds) for key, kinds in products.items()),
        f"* **{_plural(len(class_names), 'class name')}** over those legends",
        f"* GSD: {', '.join(f'{g:g} m' for g in sorted({round(i['gsd_m']) for i in infos}))}",
    ]
    return "\n".join(lines) + "\n"


def _product_text(taxonomy: str, kinds: list[str]) -> str:
    return f"{taxonomy} ({'/'.join(sorted(set(kinds)))}, {_plural(len(kinds), 'subset')})"


def _plural(count: int, noun: str) -> str:
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {noun}" + ("es" if noun.endswith(("ch", "s")) else "s")


def count_places(lonlats: list[tuple[float, float]], radius_km: float = PLACE_RADIUS_KM) -> int:
    """Number of groups of points, each point joining the first group centre within ``radius_km``."""
    centres: list[tuple[float, float]] = []
    for point in lonlats:
        if not any(haversine_km(point, c) < radius_km for c in centres):
            centres.append(point)
    return len(centres)


def _sensor_text(info: dict[str, Any]) -> str:
    sensor = info["sensor"] or "-"
    return f"{sensor} (simulated from {info['simulated_from']})" if info.get("simulated_from") else sensor


def _overview(summaries: list[dict[str, Any]]) -> str:
    rows = [
        "## Subsets\n",
        "| subset | sensor | bands | patch (px) | GSD (m) | taxonomy | label | samples | train | val | test |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        info = s["info"]
        label = f"{info['label_source']['kind']}" + (
            " (low quality)" if info["label_source"]["quality"] == "low" else ""
        )
        rows.append(
            f"| {s['name']} | {_sensor_text(info)} | {len(info['bands']['names'])} | {info['patch_size']} | "
            f"{info['gsd_m']:.0f} | {info['taxonomy']['key']} | {label} | {s['samples']} | "
            f"{s['splits']['train']} | {s['splits']['val']} | {s['splits']['test']} |"
        )
    total = sum(s["samples"] for s in summaries)
    rows.append(
        f"| **all** | | | | | | | **{total}** | "
        + " | ".join(str(sum(s["splits"][k] for s in summaries)) for k in SPLIT_CODES)
        + " |"
    )
    return "\n".join(rows) + "\n"


def _histograms(summaries: list[dict[str, Any]]) -> str:
    """Labelled pixels per class, per taxonomy (subsets sharing a taxonomy are added up)."""
    by_taxonomy: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    members: dict[str, list[str]] = defaultdict(list)
    for s in summaries:
        key = s["info"]["taxonomy"]["key"]
        members[key].append(s["name"])
        for name, pixels in s["class_pixels"].items():
            by_taxonomy[key][name] += pixels
    parts = ["## Class histograms (labelled pixels per taxonomy)\n"]
    for key, classes in by_taxonomy.items():
        total = sum(classes.values()) or 1
        parts.append(f"### {key} ({', '.join(members[key])})\n\n| class | pixels | share |\n|---|---|---|")
        for name, pixels in sorted(classes.items(), key=lambda kv: -kv[1]):
            parts.append(f"| {name} | {pixels:,} | {100 * pixels / total:.1f} % |")
        parts.append("")
    return "\n".join(parts)


def _subset_details(summaries: list[dict[str, Any]]) -> str:
    parts = ["## Subset details\n"]
    for s in summaries:
        info, stats = s["info"], s["stats"]
        source = info["label_source"]
        bands = ", ".join(f"{n} ({w:g} µm)" for n, w in zip(info["bands"]["names"], info["bands"]["wavelengths"]))
        parts.append(f"### {s['name']}\n")
        if info.get("description"):
            parts.append(info["description"] + "\n")
        parts.append(
            f"* label: {source['kind']}, {source['product'] or 'product not named'}"
            + (
                " — **low quality / out of domain: left out of training by default**"
                if source["quality"] == "low"
                else ""
            )
        )
        parts.append(f"* taxonomy `{info['taxonomy']['key']}`: {', '.join(info['taxonomy']['class_names'])}")
        if info.get("simulated_from"):
            parts.append(f"* simulated from `{info['simulated_from']}` imagery (see the description for how)")
        parts.append(
            f"* bands: {bands}; stored as {info['bands']['dtype']}, normalised with {info['bands']['normalisation']} statistics"
        )
        parts.append(f"* sampling: {_sampling_text(info['sampling'])}")
        parts.append(f"* scenes: {_scenes_text(s['scenes'])}")
        for title, key in (
            ("rejected before reading", "rejected"),
            ("skipped after reading", "skipped"),
            ("label codes not in the legend (pixels)", "unknown_codes"),
        ):
            if stats.get(key):
                parts.append(f"* {title}: " + ", ".join(f"{k}: {v}" for k, v in sorted(stats[key].items())))
        if not s["complete"]:
            parts.append("* **incomplete**: the build was interrupted; run `landseg las build` again to resume")
        parts.append("")
    return "\n".join(parts)


def _sampling_text(sampling: dict[str, Any]) -> str:
    text = f"{sampling['strategy']}, {sampling['patch_size']} px"
    if sampling.get("samples_per_scene"):
        text += f", up to {sampling['samples_per_scene']} per scene"
    text += (
        f", valid >= {sampling['min_valid_fraction']:g}, labelled >= {sampling['min_labelled_fraction']:g}, "
        f"cloud <= {sampling['max_cloud_fraction']:g}, seed {sampling['seed']}"
    )
    if sampling.get("land_only"):
        text += f", land only (water <= {sampling['max_water_fraction']:g})"
    return text


def _scenes_text(scenes: list[dict[str, Any]], listed: int = 6) -> str:
    """Each scene (split, date, time gap to the label product), or a summary of many."""
    if len(scenes) > listed:
        return _scenes_summary(scenes)
    items = []
    for scene in scenes:
        gap = scene.get("time_gap_days")
        where = "georeferenced" if scene.get("georeferenced") else "not georeferenced"
        items.append(
            f"`{scene['id']}` ({scene['split']}, {scene.get('date') or 'date unknown'}, "
            f"label gap {'unknown' if gap is None else f'{gap} d'}, {where})"
        )
    return "; ".join(items) if items else "none"


def _scenes_summary(scenes: list[dict[str, Any]]) -> str:
    splits = {split: sum(s["split"] == split for s in scenes) for split in SPLIT_CODES}
    dates = sorted(s["date"] for s in scenes if s.get("date"))
    gaps = sorted(s["time_gap_days"] for s in scenes if s.get("time_gap_days") is not None)
    georeferenced = sum(bool(s.get("georeferenced")) for s in scenes)
    text = f"{len(scenes)} scenes (" + ", ".join(f"{k} {v}" for k, v in splits.items() if v) + ")"
    text += f", dates {dates[0]} to {dates[-1]}" if dates else ", dates unknown"
    text += f", label gap {gaps[0]}-{gaps[-1]} d" if gaps else ", label gap unknown"
    return text + f", {georeferenced} georeferenced"


def _locations_note(summaries: list[dict[str, Any]]) -> str:
    placed = sum(1 for s in summaries for sc in s["scenes"] if sc.get("location"))
    unplaced = [sc["id"] for s in summaries for sc in s["scenes"] if not sc.get("location")]
    note = (
        f"{placed} scenes placed on the map (hollow markers: approximate location of imagery without georeferencing)."
    )
    if unplaced:
        note += f" Not placed (no location known): {len(unplaced)} scenes."
    return note


def plot_locations(store: LASStore, png: str | Path) -> Path:
    """A lon/lat map of patch centres (filled: georeferenced, hollow: approximate), one colour per subset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 5.2), dpi=110)
    ax.set_xlim(-180, 180)
    ax.set_ylim(-90, 90)
    ax.set_aspect("equal")
    ax.set_xticks(range(-180, 181, 60))
    ax.set_yticks(range(-90, 91, 30))
    ax.grid(True, color="#DDDDDD", linewidth=0.6)
    ax.axhline(0, color="#BBBBBB", linewidth=0.8)
    colors = plt.get_cmap("tab10").colors
    markers = "os^Dv"
    unplaced = 0
    for i, name in enumerate(store.subsets):
        lon, lat, approximate, missing = _centres(store.subset(name))
        unplaced += missing
        if not len(lon):
            continue
        style = dict(color=colors[i % len(colors)], marker=markers[(i // len(colors)) % len(markers)])
        exact = ~approximate
        label = f"{name} ({len(lon)}{', approx.' if not exact.any() else ''})"
        if exact.any():
            ax.scatter(lon[exact], lat[exact], s=30, edgecolors="black", linewidths=0.3, label=label, **style)
        if approximate.any():
            ax.scatter(
                lon[approximate],
                lat[approximate],
                s=70,
                facecolors="none",
                linewidths=1.4,
                edgecolors=[style["color"]],
                marker=style["marker"],
                label=None if exact.any() else label,
            )
    if unplaced:
        ax.text(178, -88, f"not placed (no location known): {unplaced} patches", ha="right", va="bottom", fontsize=8)
    ax.set_xlabel("longitude (°)")
    ax.set_ylabel("latitude (°)")
    ax.set_title(f"{store.name}: patch centres")
    ax.legend(loc="lower left", fontsize=7, ncol=2, framealpha=0.9)
    fig.tight_layout()
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)
    plt.close(fig)
    return png


def _centres(sub: SubsetStore) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Longitudes, latitudes, approximate-location flags of the placed patches, and the number not placed."""
    n = sub.count
    centre = sub.array("center_lonlat")[:n]
    scene_idx = sub.array("scene")[:n]
    approximate = np.array([bool(s.get("location_approximate")) for s in sub.scenes] or [False])
    known = ~np.isnan(centre).any(axis=1)
    flags = approximate[scene_idx] if n else np.zeros(0, dtype=bool)
    return centre[known, 0], centre[known, 1], flags[known], int((~known).sum())
