"""Band files of STAC items: which assets of an item hold which bands of a sensor.

An item's bands come either from one asset per band (Sentinel-2 on Earth Search or the
Planetary Computer: ``B04``/``red``, ...) or from one multi-band asset. Assets are matched
to bands by their ``eo:bands`` entries (STAC 1.0 ``eo:bands``, STAC 1.1 ``bands``; band
``name`` and common name) and by the asset key, loosely, through the sensor registry
(``"B4"``, ``"B04"`` and ``"red"`` are the same Sentinel-2 band).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import pystac

from landsegmenter.errors import LandSegError
from landsegmenter.geo.sensors import Sensor, get_sensor, list_sensors, match_sensor_by_band_names, name_key

_RASTER_TYPES = ("image/tiff", "image/vnd.stac.geotiff", "image/jp2", "application/x-geotiff")
_NOT_DATA_ROLES = {"thumbnail", "overview", "visual", "metadata"}


@dataclass(frozen=True)
class SourceScene:
    """One scene of a mosaic: its band files plus what ranks it against the others."""

    id: str
    paths: tuple[str, ...]
    cloud_cover: float | None = None  # percent (``eo:cloud_cover``); lower wins ties in a mosaic
    datetime: str | None = None


def read_item_collection(path: str | Path) -> list[pystac.Item] | None:
    """The items of a local ItemCollection (GeoJSON FeatureCollection), or None if ``path`` is not one."""
    try:
        data = json.loads(Path(path).read_text("utf-8"))
    except FileNotFoundError:
        raise LandSegError(f"no such STAC file: {path}") from None
    except (OSError, ValueError) as err:
        raise LandSegError(f"cannot read STAC file {path}: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        return None
    try:
        items = list(pystac.ItemCollection.from_dict(data, preserve_dict=False))
    except Exception as err:  # pystac raises several kinds (KeyError, STACTypeError, ValueError)
        raise LandSegError(f"{path} is not a valid STAC ItemCollection: {str(err).splitlines()[0]}") from None
    base = str(Path(path).resolve().parent)
    for item in items:
        for asset in item.assets.values():
            asset.href = _absolute(asset.href, base)
    return items


def _absolute(href: str, base: str) -> str:
    if "://" in href or href.startswith("/vsi") or os.path.isabs(href):
        return href
    return os.path.normpath(os.path.join(base, href))


def item_scene(item: pystac.Item, sensor: str | None = None, bands: Sequence[str] | None = None) -> SourceScene:
    """The band files of ``item`` for ``sensor``/``bands`` (see :func:`band_assets`) as a :class:`SourceScene`."""
    cloud = item.properties.get("eo:cloud_cover")
    return SourceScene(
        id=item.id,
        paths=tuple(band_assets(item, sensor, bands)),
        cloud_cover=float(cloud) if isinstance(cloud, (int, float)) else None,
        datetime=item.datetime.isoformat() if item.datetime else item.properties.get("start_datetime"),
    )


def band_assets(item: pystac.Item, sensor: str | None = None, bands: Sequence[str] | None = None) -> list[str]:
    """Hrefs of the assets holding the wanted bands, in band order.

    Wanted bands: ``bands``, else every band of ``sensor`` the item has (the sensor is
    guessed from the assets' band names when not given). One single-band asset per wanted
    band is preferred; otherwise one multi-band asset that has them all; an item whose only
    raster asset has no band metadata uses that asset (the file then names its bands, and
    :class:`~landsegmenter.geo.raster.Scene` checks them).
    """
    assets = _raster_assets(item)
    sensor_obj = get_sensor(sensor) if sensor else _guess_sensor(assets)
    wanted = list(bands) if bands else [b.name for b in sensor_obj.bands] if sensor_obj else []
    single = [a for a in assets if len(a.bands) <= 1]
    chosen = [next((a for a in single if a.holds(band, sensor_obj)), None) for band in wanted]
    found = list(dict.fromkeys(a.key for a in chosen if a is not None))
    multi = max((a for a in assets if len(a.bands) > 1), key=lambda a: a.coverage(wanted, sensor_obj), default=None)
    covered = multi.coverage(wanted, sensor_obj) if multi else 0
    if found and len(found) >= covered and (len(found) == len(wanted) or not bands):
        return [_href(item, key) for key in found]
    if multi and covered and (covered == len(wanted) or not bands):
        return [_href(item, multi.key)]
    if len(assets) == 1 and not assets[0].bands:
        return [_href(item, assets[0].key)]
    raise LandSegError(_no_bands_message(item, wanted, sensor_obj))


@dataclass(frozen=True)
class _RasterAsset:
    key: str
    bands: tuple[tuple[str, ...], ...]  # per band of the asset: its name and common name

    def names(self, index: int = 0) -> tuple[str, ...]:
        """Names of band ``index``; a single-band asset is also named by its key."""
        own = self.bands[index] if self.bands else ()
        return (*own, self.key) if len(self.bands) <= 1 else own

    def holds(self, band: str, sensor: Sensor | None) -> bool:
        indices = range(max(1, len(self.bands)))
        return any(_same_band(name, band, sensor) for i in indices for name in self.names(i))

    def coverage(self, wanted: Sequence[str], sensor: Sensor | None) -> int:
        return sum(self.holds(band, sensor) for band in wanted)


def _raster_assets(item: pystac.Item) -> list[_RasterAsset]:
    """Every raster data asset of the item (not thumbnails, overviews or true-colour previews)."""
    out = []
    for key, asset in item.assets.items():
        roles = set(asset.roles or [])
        entries = _band_entries(asset)
        raster = (asset.media_type or "").startswith(_RASTER_TYPES) or "data" in roles or bool(entries)
        if not raster or (roles & _NOT_DATA_ROLES and "data" not in roles):
            continue
        names = tuple(
            tuple(n for n in (e.get("name"), e.get("common_name"), e.get("eo:common_name")) if n) for e in entries
        )
        out.append(_RasterAsset(key, names))
    return out


def _band_entries(asset: pystac.Asset) -> list[dict[str, Any]]:
    entries = asset.extra_fields.get("eo:bands") or asset.extra_fields.get("bands") or []
    return [e for e in entries if isinstance(e, dict)]


def _same_band(name: str, band: str, sensor: Sensor | None) -> bool:
    if sensor is not None and sensor.has_band(name) and sensor.has_band(band):
        return sensor.band(name) is sensor.band(band)
    return name_key(name) == name_key(band)


def _guess_sensor(assets: list[_RasterAsset]) -> Sensor | None:
    """The sensor whose bands cover the band names of the assets (names no sensor knows are ignored)."""
    names = [n[0] for a in assets for i in range(max(1, len(a.bands))) if (n := a.names(i))]
    known = [n for n in names if any(s.has_band(n) for s in list_sensors())]
    return match_sensor_by_band_names(known) if known else None


def _href(item: pystac.Item, key: str) -> str:
    asset = item.assets[key]
    return asset.get_absolute_href() or asset.href


def _no_bands_message(item: pystac.Item, wanted: list[str], sensor: Sensor | None) -> str:
    what = f"bands {', '.join(wanted)}" if wanted else "its bands (pass --sensor or --bands)"
    of = f" of sensor {sensor.name}" if sensor else ""
    listed = ", ".join(item.assets) or "none"
    return f"STAC item {item.id} has no usable assets for {what}{of}; its assets: {listed}"
