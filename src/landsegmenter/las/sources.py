"""The scenes of a subset: listed in the manifest, in a CSV table, or found in a STAC catalogue."""
from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

from landsegmenter.errors import LandSegError
from landsegmenter.las.manifest import CsvScenes, SceneSpec, SubsetSpec, parse_date


def resolve_scenes(subset: SubsetSpec) -> list[SceneSpec]:
    """Every scene of ``subset``, in a stable order, with the ``splits`` overrides applied."""
    scenes = list(subset.scenes)
    if subset.scenes_csv is not None:
        scenes += scenes_from_csv(subset.scenes_csv)
    if subset.imagery.stac is not None:
        from landsegmenter.las.stac import scenes_from_stac

        scenes += scenes_from_stac(subset.imagery, subset.label)
    _check_unique_ids(scenes, subset.name)
    return _apply_splits(scenes, subset)


def scenes_from_csv(table: CsvScenes) -> list[SceneSpec]:
    """One scene per row; relative file paths are relative to the CSV file."""
    path = Path(table.path)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as err:
        raise LandSegError(f"cannot read scene table {path}: {err.strerror or err}") from None
    if not rows:
        raise LandSegError(f"scene table {path} has no rows")
    columns = [
        c
        for c in (table.id, table.image, table.label, table.cloud_mask, table.date, table.label_date, table.split)
        if c
    ]
    missing = [c for c in columns if c not in rows[0]]
    if missing:
        raise LandSegError(f"scene table {path}: no column(s) {', '.join(missing)}; columns: {', '.join(rows[0])}")
    return [_scene_from_row(row, table, path, n + 2) for n, row in enumerate(rows)]


def _scene_from_row(row: dict[str, str], table: CsvScenes, path: Path, line: int) -> SceneSpec:
    where = f"{path}, line {line}"

    def file(column: str | None) -> str | None:
        if not column or not row[column]:
            return None
        value = Path(row[column])
        return str(value if value.is_absolute() else (path.parent / value).resolve())

    split = row[table.split] if table.split else "train"
    split = table.split_map.get(split, split)
    if split not in ("train", "val", "test"):
        raise LandSegError(f"{where}: split {split!r} is not train, val or test (map it with 'split_map')")
    return SceneSpec(
        id=row[table.id],
        image=(file(table.image),),  # type: ignore[arg-type]
        label=file(table.label),
        cloud_mask=file(table.cloud_mask),
        date=parse_date(row[table.date], f"{where}: date") if table.date else None,
        label_date=parse_date(row[table.label_date], f"{where}: label_date") if table.label_date else None,
        split=split,
    )


def _check_unique_ids(scenes: list[SceneSpec], subset: str) -> None:
    seen: set[str] = set()
    for scene in scenes:
        if scene.id in seen:
            raise LandSegError(f"subset '{subset}': duplicate scene id {scene.id!r}; sample ids would collide")
        seen.add(scene.id)


def _apply_splits(scenes: list[SceneSpec], subset: SubsetSpec) -> list[SceneSpec]:
    split_of = {scene_id: split for split, ids in subset.splits.items() for scene_id in ids}
    unknown = sorted(set(split_of) - {s.id for s in scenes})
    if unknown:
        raise LandSegError(f"subset '{subset.name}': 'splits' names unknown scene(s) {', '.join(unknown)}")
    return [dataclasses.replace(s, split=split_of.get(s.id, s.split)) for s in scenes]
