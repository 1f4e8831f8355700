"""QGIS layer styles (``.qml``) for class rasters, so QGIS opens them with their legend.

A ``.qml`` beside a raster with the same stem is QGIS's default style for it: a paletted
renderer with one entry (value, colour, label) per class; nodata stays transparent.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Sequence

from landsegmenter.geo.cog import atomic_write_bytes

QGIS_VERSION = "3.28.0"  # the oldest LTR whose paletted renderer reads this layout


def paletted_style(class_names: Sequence[str], colors: Sequence[tuple[int, int, int]], band: int = 1) -> bytes:
    """The QML document: a paletted renderer of ``band`` with class ``i`` at value ``i``."""
    root = ET.Element("qgis", version=QGIS_VERSION, styleCategories="AllStyleCategories")
    pipe = ET.SubElement(root, "pipe")
    renderer = ET.SubElement(pipe, "rasterrenderer", type="paletted", band=str(band), opacity="1",
                             alphaBand="-1", nodataColor="")
    ET.SubElement(renderer, "rasterTransparency")
    palette = ET.SubElement(renderer, "colorPalette")
    for value, (name, color) in enumerate(zip(class_names, colors)):
        ET.SubElement(palette, "paletteEntry", value=str(value), color="#%02x%02x%02x" % tuple(color),
                      alpha="255", label=name)
    ET.SubElement(pipe, "brightnesscontrast", brightness="0", contrast="0", gamma="1")
    ET.SubElement(pipe, "huesaturation", saturation="0", grayscaleMode="0", colorizeOn="0")
    ET.SubElement(pipe, "rasterresampler", maxOversampling="2")
    ET.SubElement(root, "blendMode").text = "0"
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return ("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + body + "\n").encode("utf-8")


def write_qml(path: Path, class_names: Sequence[str], colors: Sequence[tuple[int, int, int]]) -> None:
    atomic_write_bytes(path, paletted_style(class_names, colors))
