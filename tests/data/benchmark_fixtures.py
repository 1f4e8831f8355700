"""Small benchmark releases in their published layouts, built from the real sample-data kit.

Image pixels are crops of the real Sentinel-2 L1C scene of ``s2_t33uuu_20170216``
(red, green, blue, NIR scaled to 8 bit); label maps follow the real Dynamic World
label of the same scene, recoded into each benchmark's codes, with a strip of
3 x 3 px blocks at the top holding every code so that each one is decoded.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image
from rasterio.crs import CRS
from rasterio.transform import from_origin

SCENE = Path("s2_t33uuu_20170216")
S2_BANDS = {"red": 4, "green": 3, "blue": 2, "nir": 8}
SIZE = 64


class RealPixels:
    """Crops of the real scene: 8-bit R, G, B, NIR and the Dynamic World class map."""

    def __init__(self, shared_data: Path) -> None:
        with rasterio.open(shared_data / SCENE / "s2_l1c_13band_10m.tif") as src:
            bands = src.read([S2_BANDS[n] for n in ("red", "green", "blue", "nir")])
        self.rgbn = np.clip(bands.astype(np.float32) / 3000.0 * 255.0, 0, 255).astype(np.uint8)
        with rasterio.open(shared_data / SCENE / "dynamic_world_label.tif") as src:
            self.classes = src.read(1)
        self._next = 0

    def crop(self, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
        """A new ``(rgbn uint8 [4, size, size], dynamic-world classes [size, size])`` crop per call."""
        row = 64 + (self._next * 97) % (self.rgbn.shape[1] - size - 64)
        col = 64 + (self._next * 211) % (self.rgbn.shape[2] - size - 64)
        self._next += 1
        window = (slice(row, row + size), slice(col, col + size))
        return self.rgbn[(slice(None), *window)].copy(), self.classes[window].copy()


def recode(classes: np.ndarray, codes: Sequence[int]) -> np.ndarray:
    """Dynamic World classes -> benchmark ``codes`` (cyclically), plus a top strip with every code."""
    out = np.asarray(codes, dtype=np.uint8)[classes.astype(np.int64) % len(codes)]
    for k, code in enumerate(codes):
        out[0:3, 3 * k : 3 * k + 3] = code
    return out


def colorize(codes: np.ndarray, colors: dict[int, tuple[int, int, int]]) -> np.ndarray:
    """Code map ``[H, W]`` -> ``uint8 [3, H, W]`` RGB with ``colors[code]``."""
    rgb = np.zeros((3, *codes.shape), dtype=np.uint8)
    for code, color in colors.items():
        rgb[:, codes == code] = np.asarray(color, dtype=np.uint8)[:, None]
    return rgb


def naive_erode(labels: np.ndarray, radius: int, ignore: int = 255) -> np.ndarray:
    """Reference erosion by plain loops: ignore a pixel if a different class lies within ``radius``."""
    height, width = labels.shape
    out = labels.copy()
    for y in range(height):
        for x in range(width):
            for yy in range(max(0, y - radius), min(height, y + radius + 1)):
                for xx in range(max(0, x - radius), min(width, x + radius + 1)):
                    near = (yy - y) ** 2 + (xx - x) ** 2 <= radius * radius
                    if near and labels[yy, xx] != labels[y, x] and labels[yy, xx] != ignore:
                        out[y, x] = ignore
    return out


def write_tif(path: Path, array: np.ndarray, crs: str | None = None, origin: tuple[float, float] = (0, 0),
              res: float = 1.0, photometric: str | None = None) -> Path:
    """``[C, H, W]`` (or ``[H, W]``) array as a GeoTIFF, georeferenced when ``crs`` is given."""
    array = array[None] if array.ndim == 2 else array
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = dict(driver="GTiff", width=array.shape[2], height=array.shape[1], count=array.shape[0],
                   dtype=array.dtype.name)
    if crs is not None:
        profile.update(crs=CRS.from_string(crs), transform=from_origin(origin[0], origin[1], res, res))
    if photometric:
        profile["photometric"] = photometric
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array)
    return path


def write_image(path: Path, array: np.ndarray, **save: object) -> Path:
    """``[3, H, W]`` or ``[H, W]`` uint8 as PNG/JPEG (format from the suffix), as the releases store them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = array if array.ndim == 2 else np.moveaxis(array, 0, -1)
    Image.fromarray(pixels).save(path, **save)
    return path


# -- releases ------------------------------------------------------------------------------

Expected = dict[str, tuple[np.ndarray, np.ndarray]]
"""sample id -> (rgbn uint8 [4, H, W] written as the image, native codes [H, W] written as the reference)."""

OEM_SPLITS = {"train": ["aachen_1.tif", "al_qurnah_12.tif"], "val": ["aachen_11.tif"], "test": ["tokyo_2.tif"]}


def build_openearthmap(root: Path, px: RealPixels) -> tuple[Path, Expected]:
    """``OpenEarthMap_wo_xBD`` with split files, region folders, RGB images and code labels (test unlabelled)."""
    release = root / "OpenEarthMap_wo_xBD"
    expected: Expected = {}
    for split, names in OEM_SPLITS.items():
        release.mkdir(parents=True, exist_ok=True)
        (release / f"{split}.txt").write_text("\n".join(names) + "\n")
        for name in names:
            region = name.rsplit("_", 1)[0]
            rgbn, dw = px.crop()
            codes = recode(dw, range(0, 9))
            write_tif(release / region / "images" / name, rgbn[:3], crs="EPSG:32633", origin=(5e5, 5.8e6), res=0.5,
                      photometric="RGB")
            if split != "test":
                write_tif(release / region / "labels" / name, codes, crs="EPSG:32633", origin=(5e5, 5.8e6), res=0.5)
            expected[name.removesuffix(".tif")] = (rgbn, codes)
    return release, expected


LOVEDA_FILES = {
    ("Train", "Urban"): ["1366", "2"],
    ("Train", "Rural"): ["10"],
    ("Val", "Urban"): ["3514"],
    ("Val", "Rural"): ["2522"],
    ("Test", "Rural"): ["5167"],
}


def build_loveda(root: Path, px: RealPixels) -> Expected:
    """``Train/Val/Test`` x ``Urban/Rural`` with ``images_png`` and ``masks_png`` (no test masks)."""
    expected: Expected = {}
    for (split, domain), stems in LOVEDA_FILES.items():
        for stem in stems:
            rgbn, dw = px.crop()
            codes = recode(dw, range(0, 8))
            write_image(root / split / domain / "images_png" / f"{stem}.png", rgbn[:3])
            if split != "Test":
                write_image(root / split / domain / "masks_png" / f"{stem}.png", codes)
            expected[f"{domain.lower()}/{stem}"] = (rgbn, codes)
    return expected


FLAIR_TILES = {
    "train": [("D004_2021", "Z10_AU", "000826"), ("D004_2021", "Z10_AU", "000827"), ("D014_2020", "Z1_UU", "004001")],
    "test": [("D012_2019", "Z1_UU", "061001")],
}
FLAIR_VAL = [("D014_2020", "Z1_UU", "004001")]


def flair_elevation(dw: np.ndarray) -> np.ndarray:
    """A plausible 8-bit elevation band: terrain ramp plus height by land-cover class."""
    ramp = np.add.outer(np.arange(dw.shape[0]), np.arange(dw.shape[1])) // 4
    return (ramp + 9 * (dw.astype(np.int64) % 9)).astype(np.uint8)


def build_flair(root: Path, px: RealPixels, with_csv: bool = True) -> Expected:
    """``flair_aerial_train``/``flair_labels_train`` and the test twins, 5-band IMG_ and MSK_ tiffs."""
    folders = {"train": ("flair_aerial_train", "flair_labels_train"),
               "test": ("flair_1_aerial_test", "flair_1_labels_test")}
    expected: Expected = {}
    for split, tiles in FLAIR_TILES.items():
        for domain, zone, number in tiles:
            rgbn, dw = px.crop()
            codes = recode(dw, range(1, 20))
            image = np.concatenate([rgbn, flair_elevation(dw)[None]])
            aerial, labels = folders[split]
            write_tif(root / aerial / domain / zone / "img" / f"IMG_{number}.tif", image, crs="EPSG:2154",
                      origin=(6.5e5, 6.86e6), res=0.2)
            write_tif(root / labels / domain / zone / "msk" / f"MSK_{number}.tif", codes, crs="EPSG:2154",
                      origin=(6.5e5, 6.86e6), res=0.2)
            expected[f"{domain}/{zone}/IMG_{number}"] = (image, codes)
    if with_csv:
        lines = [f"../flair_aerial_train/{d}/{z}/img/IMG_{n}.tif,../flair_labels_train/{d}/{z}/msk/MSK_{n}.tif"
                 for d, z, n in FLAIR_VAL]
        (root / "flair-1-paths-val.csv").write_text("\n".join(lines) + "\n")
    return expected


ISPRS_COLORS = {0: (255, 255, 255), 1: (0, 0, 255), 2: (0, 255, 255), 3: (0, 255, 0), 4: (255, 255, 0),
                5: (255, 0, 0), 255: (0, 0, 0)}


def _isprs_tile(px: RealPixels) -> tuple[np.ndarray, np.ndarray]:
    rgbn, dw = px.crop()
    return rgbn, recode(dw, range(0, 6))


def build_potsdam(root: Path, px: RealPixels, tiles: Sequence[str], eroded: Sequence[str]) -> Expected:
    """Every tile in RGB, IRRG and RGBIR, full references, ``noBoundary`` ones for ``eroded``, nDSM JPEGs."""
    expected: Expected = {}
    for tile in tiles:
        rgbn, codes = _isprs_tile(px)
        r, g, b, n = rgbn
        products = {"2_Ortho_RGB": ("RGB", [r, g, b]), "3_Ortho_IRRG": ("IRRG", [n, r, g]),
                    "4_Ortho_RGBIR": ("RGBIR", [r, g, b, n])}
        for folder, (kind, bands) in products.items():
            write_tif(root / folder / f"top_potsdam_{tile}_{kind}.tif", np.stack(bands), crs="EPSG:32633",
                      origin=(3.66e5, 5.81e6), res=0.05)
        write_tif(root / "5_Labels_all" / f"top_potsdam_{tile}_label.tif", colorize(codes, ISPRS_COLORS),
                  crs="EPSG:32633", origin=(3.66e5, 5.81e6), res=0.05, photometric="RGB")
        if tile in eroded:
            write_tif(root / "5_Labels_all_noBoundary" / f"top_potsdam_{tile}_label_noBoundary.tif",
                      colorize(naive_erode(codes, 3), ISPRS_COLORS), crs="EPSG:32633", origin=(3.66e5, 5.81e6),
                      res=0.05, photometric="RGB")
        row, col = (int(v) for v in tile.split("_"))
        write_image(root / "1_DSM_normalisation" / f"dsm_potsdam_{row:02d}_{col:02d}_normalized_lastools.jpg",
                    flair_elevation(codes), quality=100)
        expected[f"top_potsdam_{tile}"] = (rgbn, codes)
    return expected


def build_vaihingen(root: Path, px: RealPixels, train: Sequence[int], test: Sequence[int],
                    without_eroded: Sequence[int] = ()) -> Expected:
    """``top/`` IRRG mosaics, ``gts_for_participants`` (train), COMPLETE and eroded COMPLETE references, DSM."""
    base = root / "ISPRS_semantic_labeling_Vaihingen"
    expected: Expected = {}
    for area in [*train, *test]:
        rgbn, codes = _isprs_tile(px)
        name = f"top_mosaic_09cm_area{area}.tif"
        write_tif(base / "top" / name, np.stack([rgbn[3], rgbn[0], rgbn[1]]), photometric="RGB")
        labels = colorize(codes, ISPRS_COLORS)
        if area in train:
            write_tif(base / "gts_for_participants" / name, labels, photometric="RGB")
        write_tif(root / "ISPRS_semantic_labeling_Vaihingen_ground_truth_COMPLETE" / name, labels, photometric="RGB")
        if area not in without_eroded:
            write_tif(root / "ISPRS_semantic_labeling_Vaihingen_ground_truth_eroded_COMPLETE"
                      / f"top_mosaic_09cm_area{area}_noBoundary.tif",
                      colorize(naive_erode(codes, 3), ISPRS_COLORS), photometric="RGB")
        dsm = 250.0 + flair_elevation(codes).astype(np.float32) / 4
        write_tif(base / "dsm" / f"dsm_09cm_matching_area{area}.tif", dsm)
        expected[f"area{area}"] = (rgbn, codes)
    return expected


DEEPGLOBE_COLORS = {0: (0, 255, 255), 1: (255, 255, 0), 2: (255, 0, 255), 3: (0, 255, 0), 4: (0, 0, 255),
                    5: (255, 255, 255), 6: (0, 0, 0)}


def noisy_mask(codes: np.ndarray) -> np.ndarray:
    """DeepGlobe-style mask: class colours with the off-by-a-few values of the released PNGs."""
    rgb = colorize(codes, DEEPGLOBE_COLORS).astype(np.int16)
    wobble = (np.add.outer(np.arange(codes.shape[0]), 2 * np.arange(codes.shape[1])) % 7).astype(np.int16)
    rgb = np.where(rgb > 127, rgb - wobble, rgb + wobble)
    return rgb.astype(np.uint8)


def build_deepglobe_challenge(root: Path, px: RealPixels) -> Expected:
    """``train/`` with ``<id>_sat.jpg`` + ``<id>_mask.png``, ``valid/`` and ``test/`` images only."""
    expected: Expected = {}
    for folder, ids in {"train": ["100694", "102122"], "valid": ["105036"], "test": ["100877"]}.items():
        for tile_id in ids:
            rgbn, dw = px.crop()
            codes = recode(dw, range(0, 7))
            write_image(root / folder / f"{tile_id}_sat.jpg", rgbn[:3], quality=95)
            if folder == "train":
                write_image(root / folder / f"{tile_id}_mask.png", noisy_mask(codes))
            expected[tile_id] = (rgbn, codes)
    (root / "metadata.csv").write_text("image_id,split,sat_image_path,mask_path\n"
                                       "100694,train,train/100694_sat.jpg,train/100694_mask.png\n")
    (root / "class_dict.csv").write_text("name,r,g,b\nurban_land,0,255,255\nagriculture_land,255,255,0\n"
                                         "rangeland,255,0,255\nforest_land,0,255,0\nwater,0,0,255\n"
                                         "barren_land,255,255,255\nunknown,0,0,0\n")
    return expected


def build_deepglobe_resplit(root: Path, px: RealPixels) -> Expected:
    """``data/training_data`` and ``data/test_data`` with ``images/`` and ``masks/``."""
    expected: Expected = {}
    for folder, ids in {"training_data": ["119", "6399"], "test_data": ["855"]}.items():
        for tile_id in ids:
            rgbn, dw = px.crop()
            codes = recode(dw, range(0, 7))
            write_image(root / "data" / folder / "images" / f"{tile_id}_sat.jpg", rgbn[:3], quality=95)
            write_image(root / "data" / folder / "masks" / f"{tile_id}_mask.png", noisy_mask(codes))
            expected[tile_id] = (rgbn, codes)
    return expected


CHESAPEAKE_TILES = {
    "de_1m_2013_extended-debuffered-test_tiles": [("m_3807503_ne_18_1", (420_000.0, 4_300_000.0))],
    "va_1m_2014_extended-debuffered-test_tiles": [("m_3707622_sw_18_1", (420_200.0, 4_299_900.0))],
    "md_1m_2013_extended-debuffered-train_tiles": [("m_3907633_nw_18_1", (420_064.0, 4_300_000.0))],
}
CHESAPEAKE_CRS = "EPSG:26918"
BAYWIDE_ORIGIN = (419_990.0, 4_300_010.0)
BAYWIDE_SIZE = (200, 240)


def build_chesapeake(root: Path, px: RealPixels) -> tuple[Path, Expected, np.ndarray]:
    """``cvpr_chesapeake_landcover`` state/split folders with NAIP + lc (+ nlcd) tiles and a 13-class raster."""
    release = root / "cvpr_chesapeake_landcover"
    expected: Expected = {}
    for folder, tiles in CHESAPEAKE_TILES.items():
        state = folder[:2]
        for tile_id, origin in tiles:
            rgbn, dw = px.crop()
            codes = recode(dw, [0, 1, 2, 3, 4, 5, 6, 15])
            write_tif(release / folder / f"{tile_id}_naip-new.tif", rgbn, crs=CHESAPEAKE_CRS, origin=origin)
            write_tif(release / folder / f"{tile_id}_lc.tif", codes, crs=CHESAPEAKE_CRS, origin=origin)
            write_tif(release / folder / f"{tile_id}_nlcd.tif", np.full_like(codes, 41), crs=CHESAPEAKE_CRS,
                      origin=origin)
            expected[f"{state}/{tile_id}"] = (rgbn, codes)
    (release / "spatial_index.geojson").write_text('{"type": "FeatureCollection", "features": []}\n')
    rows, cols = BAYWIDE_SIZE
    baywide = (np.add.outer(np.arange(rows) // 7, np.arange(cols) // 5) % 14).astype(np.uint8)
    write_tif(release / "Baywide_13Class_20132014.tif", baywide, crs=CHESAPEAKE_CRS, origin=BAYWIDE_ORIGIN)
    return release, expected, baywide


# -- Gaofen-2: Five-Billion-Pixels and GID ---------------------------------------------------

GAOFEN_SHAPE = (72, 80)
"""Rows, columns of the Gaofen fixtures: not square, and wide enough for a 25-code strip."""

FBP_TRAIN_SCENES = ("GF2_PMS1__L1A0000564539-MSS1", "GF2_PMS2__L1A0001206072-MSS2")
FBP_COLORS = {  # the release readme's "correspondence of colors (RGB) and categories", by index
    0: (0, 0, 0), 1: (200, 0, 0), 2: (0, 200, 0), 3: (150, 250, 0), 4: (150, 200, 150), 5: (200, 0, 200),
    6: (150, 0, 250), 7: (150, 150, 250), 8: (200, 150, 200), 9: (250, 200, 0), 10: (200, 200, 0),
    11: (0, 0, 200), 12: (250, 0, 150), 13: (0, 150, 200), 14: (0, 200, 250), 15: (150, 200, 250),
    16: (250, 250, 250), 17: (200, 200, 200), 18: (200, 150, 150), 19: (250, 200, 150), 20: (150, 150, 0),
    21: (250, 150, 150), 22: (250, 150, 0), 23: (250, 200, 250), 24: (200, 150, 0),
}
RPB = ('satId = "GF2";\nbandId = "MSS1";\nSpecId = "RPC00B";\nBEGIN_GROUP = IMAGE\n'
       '\tlineOffset = +003650;\nEND_GROUP = IMAGE\nEND;\n')


def gaofen_crop(px: RealPixels) -> tuple[np.ndarray, np.ndarray]:
    """A ``(rgbn uint8 [4, 72, 80], dynamic-world classes [72, 80])`` crop of the real scene."""
    rgbn, dw = px.crop(GAOFEN_SHAPE[1])
    return rgbn[:, : GAOFEN_SHAPE[0]].copy(), dw[: GAOFEN_SHAPE[0]].copy()


def build_five_billion_pixels(root: Path, px: RealPixels, scenes: Sequence[str], suffix: str = ".tiff",
                              eight_bit: str = "Image__8bit_NirRGB", index_labels: bool = True) -> Expected:
    """The release: 16-bit B, G, R, NIR (8-bit DN x 4), CMYK-tagged 8-bit NIR, R, G, B, index PNG and
    colour TIFF ``_24label`` references, ``.rpb`` files."""
    expected: Expected = {}
    for scene in scenes:
        rgbn, dw = gaofen_crop(px)
        r, g, b, n = rgbn
        codes = recode(dw, range(0, 25))
        write_tif(root / "Image_16bit_BGRNir" / f"{scene}{suffix}", np.stack([b, g, r, n]).astype(np.uint16) * 4)
        write_tif(root / eight_bit / f"{scene}{suffix}", np.stack([n, r, g, b]), photometric="CMYK")
        if index_labels:
            write_image(root / "Annotation__index" / f"{scene}_24label.png", codes)
        write_tif(root / "Annotation__color" / f"{scene}_24label.tif", colorize(codes, FBP_COLORS), photometric="RGB")
        (root / "Coordinate_files").mkdir(exist_ok=True)
        (root / "Coordinate_files" / f"{scene}.rpb").write_text(RPB)
        expected[scene] = (rgbn, codes)
    return expected


GID_SETS = {  # set folder: (label folder, published colours by code, scenes, NirRGB tagged CMYK)
    "Large-scale Classification_5classes": (
        "label_5classes",
        {0: (0, 0, 0), 1: (255, 0, 0), 2: (0, 255, 0), 3: (0, 255, 255), 4: (255, 255, 0), 5: (0, 0, 255)},
        ("GF2_PMS1__L1A0000647767-MSS1", "GF2_PMS1__L1A0001015649-MSS1", "GF2_PMS2__L1A0001119060-MSS2"),
        True,
    ),
    "Fine Land-cover Classification_15classes": (
        "label_15classes",
        {0: (0, 0, 0), 1: (200, 0, 0), 2: (250, 0, 150), 3: (200, 150, 150), 4: (250, 150, 150), 5: (0, 200, 0),
         6: (150, 250, 0), 7: (150, 200, 150), 8: (200, 0, 200), 9: (150, 0, 250), 10: (150, 150, 250),
         11: (250, 200, 0), 12: (200, 200, 0), 13: (0, 0, 200), 14: (0, 150, 200), 15: (0, 200, 250)},
        ("GF2_PMS1__L1A0001064454-MSS1", "GF2_PMS2__L1A0001378501-MSS2"),
        False,
    ),
}


def build_gid(root: Path, px: RealPixels) -> dict[str, Expected]:
    """Both GID sets under ``root``: ``image_NirRGB`` (CMYK-tagged for GID-5, plain for GID-15),
    ``image_RGB`` and colour-coded ``<scene>_label.tif`` references; expected pixels per set folder."""
    expected: dict[str, Expected] = {}
    for set_folder, (label_folder, colors, scenes, cmyk) in GID_SETS.items():
        expected[set_folder] = {}
        for scene in scenes:
            rgbn, dw = gaofen_crop(px)
            r, g, b, n = rgbn
            codes = recode(dw, sorted(colors))
            base = root / set_folder
            write_tif(base / "image_NirRGB" / f"{scene}.tif", np.stack([n, r, g, b]),
                      photometric="CMYK" if cmyk else None)
            write_tif(base / "image_RGB" / f"{scene}.tif", np.stack([r, g, b]), photometric="RGB")
            write_tif(base / label_folder / f"{scene}_label.tif", colorize(codes, colors), photometric="RGB")
            expected[set_folder][scene] = (rgbn, codes)
    return expected
