"""Scenes from STAC items: imagery items paired with the label-product item that covers them.

A static catalogue (``catalog``: a ``catalog.json`` or ``collection.json``) is read with
pystac and filtered here; an API (``api``) is searched with pystac-client. Each imagery item
becomes one scene; its label is the label item whose footprint overlaps it most (ties:
the one closest in time), and the time between the two items is recorded.
"""
from __future__ import annotations

import datetime as dt
from typing import Iterable

import pystac

from landsegmenter.errors import LandSegError
from landsegmenter.las.manifest import ImagerySpec, LabelSpec, SceneSpec, StacQuery

_RASTER_TYPES = ("image/tiff", "image/vnd.stac.geotiff", "image/jp2", "application/x-geotiff")


def scenes_from_stac(imagery: ImagerySpec, label: LabelSpec) -> list[SceneSpec]:
    """One scene per imagery item, each paired with a label item."""
    if label.stac is None:
        raise LandSegError("imagery comes from STAC, so the label product must too: add 'label: stac:'")
    image_items = search_items(imagery.stac)  # type: ignore[arg-type]
    label_items = search_items(label.stac)
    if not image_items:
        raise LandSegError(f"no imagery items match the STAC query ({_describe(imagery.stac)})")  # type: ignore[arg-type]
    if not label_items:
        raise LandSegError(f"no label items match the STAC query ({_describe(label.stac)})")
    return [_scene(item, imagery.stac, label.stac, label_items) for item in image_items]  # type: ignore[arg-type]


def search_items(query: StacQuery) -> list[pystac.Item]:
    """Items of a static catalogue or an API that match ``query``, sorted by id."""
    items = _api_items(query) if query.api else _catalog_items(query)
    items = sorted(items, key=lambda item: item.id)
    return items[: query.max_items] if query.max_items else items


def _catalog_items(query: StacQuery) -> Iterable[pystac.Item]:
    try:
        root = pystac.read_file(query.catalog)  # type: ignore[arg-type]
    except Exception as err:  # pystac raises many kinds (OSError, JSON, STACTypeError)
        raise LandSegError(f"cannot read STAC catalogue {query.catalog}: {str(err).splitlines()[0]}") from None
    if isinstance(root, pystac.Item):
        candidates: Iterable[pystac.Item] = [root]
    elif isinstance(root, pystac.Catalog):
        candidates = root.get_items(recursive=True)
    else:
        raise LandSegError(f"{query.catalog} is a {type(root).__name__}, not a STAC catalogue, collection or item")
    return [item for item in candidates if _matches(item, query)]


def _api_items(query: StacQuery) -> list[pystac.Item]:
    from pystac_client import Client
    from pystac_client.exceptions import APIError

    try:
        client = Client.open(query.api)  # type: ignore[arg-type]
        search = client.search(
            collections=list(query.collections) or None,
            ids=list(query.ids) or None,
            bbox=list(query.bbox) if query.bbox else None,
            datetime=query.datetime,
            query=dict(query.query) if query.query else None,
            max_items=query.max_items,
        )
        return list(search.items())
    except (APIError, OSError) as err:
        raise LandSegError(f"STAC API {query.api}: {str(err).splitlines()[0]}") from None


def _matches(item: pystac.Item, query: StacQuery) -> bool:
    if query.collections and item.collection_id not in query.collections:
        return False
    if query.ids and item.id not in query.ids:
        return False
    if query.bbox and (item.bbox is None or _overlap(item.bbox, query.bbox) <= 0):
        return False
    if query.datetime and not _in_interval(item, query.datetime):
        return False
    if query.query:
        raise LandSegError(
            "'query' filters need a STAC API ('api'); filter a static catalogue by ids, bbox or datetime"
        )
    return True


def _in_interval(item: pystac.Item, interval: str) -> bool:
    start_text, separator, end_text = interval.partition("/")
    if not separator:  # a single date or instant
        end_text = start_text
    start = None if start_text in ("", "..") else _parse_instant(start_text)
    end = None if end_text in ("", "..") else _parse_instant(end_text, end_of_day=True)
    when = item_datetime(item)
    if when is None:
        return False
    return (start is None or when >= start) and (end is None or when <= end)


def _parse_instant(text: str, end_of_day: bool = False) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise LandSegError(f"STAC datetime {text!r} is not ISO 8601 (e.g. 2017-01-01/2017-12-31)") from None
    if len(text) == 10 and end_of_day:
        value = value.replace(hour=23, minute=59, second=59)
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def item_datetime(item: pystac.Item) -> dt.datetime | None:
    """The item's datetime, or the middle of its start/end range."""
    if item.datetime is not None:
        value = item.datetime
    else:
        start = item.common_metadata.start_datetime
        end = item.common_metadata.end_datetime
        if start is None or end is None:
            return None
        value = start + (end - start) / 2
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def _scene(item: pystac.Item, image_query: StacQuery, label_query: StacQuery, labels: list[pystac.Item]) -> SceneSpec:
    label_item = _best_label(item, labels)
    when = item_datetime(item)
    label_when = item_datetime(label_item)
    return SceneSpec(
        id=item.id,
        image=tuple(asset_hrefs(item, image_query.assets)),
        label=asset_hrefs(label_item, label_query.assets[:1])[0],
        date=when.date() if when else None,
        label_date=label_when.date() if label_when else None,
    )


def _best_label(item: pystac.Item, labels: list[pystac.Item]) -> pystac.Item:
    if item.bbox is None:
        raise LandSegError(f"STAC item {item.id} has no bbox; cannot find its label item")
    overlapping = [(label, _overlap(item.bbox, label.bbox)) for label in labels if label.bbox]
    overlapping = [(label, area) for label, area in overlapping if area > 0]
    if not overlapping:
        raise LandSegError(f"no label item overlaps imagery item {item.id} (bbox {item.bbox})")
    when = item_datetime(item)

    def rank(pair: tuple[pystac.Item, float]) -> tuple[float, float]:
        label, area = pair
        label_when = item_datetime(label)
        gap = abs((label_when - when).total_seconds()) if when and label_when else float("inf")
        return -round(area, 12), gap

    return min(overlapping, key=rank)[0]


def asset_hrefs(item: pystac.Item, keys: tuple[str, ...]) -> list[str]:
    """Absolute hrefs of the assets ``keys`` (in that order), or of the item's one raster data asset."""
    if keys:
        missing = [k for k in keys if k not in item.assets]
        if missing:
            raise LandSegError(
                f"STAC item {item.id} has no asset(s) {', '.join(missing)}; assets: {', '.join(item.assets)}"
            )
        return [item.assets[k].get_absolute_href() or item.assets[k].href for k in keys]
    data = [
        a for a in item.assets.values() if "data" in (a.roles or []) or (a.media_type or "").startswith(_RASTER_TYPES)
    ]
    if len(data) != 1:
        raise LandSegError(
            f"STAC item {item.id} has {len(data)} raster data assets ({', '.join(item.assets)}); name them with 'assets'"
        )
    return [data[0].get_absolute_href() or data[0].href]


def _overlap(a: list[float] | tuple[float, ...], b: list[float] | tuple[float, ...]) -> float:
    """Area (square degrees) of the intersection of two lon/lat boxes (2-D bbox or the 2-D part of 3-D)."""
    ax0, ay0, ax1, ay1 = _box(a)
    bx0, by0, bx1, by1 = _box(b)
    return max(0.0, min(ax1, bx1) - max(ax0, bx0)) * max(0.0, min(ay1, by1) - max(ay0, by0))


def _box(bbox: list[float] | tuple[float, ...]) -> tuple[float, float, float, float]:
    if len(bbox) == 6:
        return bbox[0], bbox[1], bbox[3], bbox[4]
    return bbox[0], bbox[1], bbox[2], bbox[3]  # type: ignore[return-value]


def _describe(query: StacQuery) -> str:
    parts = [f"catalog {query.catalog}" if query.catalog else f"api {query.api}"]
    if query.collections:
        parts.append(f"collections {', '.join(query.collections)}")
    if query.ids:
        parts.append(f"{len(query.ids)} ids")
    if query.datetime:
        parts.append(f"datetime {query.datetime}")
    return "; ".join(parts)
