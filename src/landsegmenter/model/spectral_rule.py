"""A transparent spectral-index baseline: nearest spectral prototype per class concept.

Not a learned model: it maps each class name to a land-cover concept by keywords and
scores each pixel by its distance to that concept's prototype in (NDVI, MNDWI or NDWI,
visible brightness) space. Useful as the everyday baseline and to test the engine.
"""
from __future__ import annotations

from typing import Sequence

import torch

from landsegmenter.errors import LandSegError

# concept: (keywords, (ndvi, water index, brightness) prototype); prototypes are typical
# top-of-atmosphere reflectance values (checked against Dynamic World classes on the
# Sentinel-2 sample scenes of Germany, Denmark and Western Australia).
CONCEPTS: dict[str, tuple[tuple[str, ...], tuple[float, float, float]]] = {
    "water": (("water", "river", "lake", "sea", "ocean", "pond", "reservoir"), (-0.20, 0.60, 0.10)),
    "flooded vegetation": (("flooded", "wetland", "marsh", "mangrove", "swamp", "paddy"), (0.35, 0.00, 0.08)),
    "snow": (("snow", "ice", "glacier"), (0.00, 0.60, 0.50)),
    "cloud": (("cloud",), (0.02, 0.00, 0.40)),
    "trees": (("tree", "forest", "wood", "arbor"), (0.55, -0.25, 0.08)),
    "shrub": (("shrub", "scrub", "bush", "rangeland"), (0.20, -0.45, 0.13)),
    "crops": (("crop", "agricult", "farm", "arable", "cultivat", "field", "orchard"), (0.40, -0.35, 0.12)),
    "grass": (("grass", "herbaceous", "meadow", "pasture", "lawn", "park"), (0.50, -0.30, 0.11)),
    "built": (("built", "urban", "developed", "residential", "industrial", "settlement", "road", "village",
               "town", "city", "impervious", "artificial", "building"), (0.15, -0.15, 0.14)),
    "bare": (("bare", "sediment", "sand", "soil", "rock", "desert", "barren", "mining", "dryout", "beach"),
             (0.10, 0.00, 0.21)),
}
SCALES = (0.15, 0.20, 0.06)
BANDS = {"blue": (0.45, 0.52), "green": (0.52, 0.60), "red": (0.62, 0.70), "nir": (0.76, 0.90), "swir1": (1.55, 1.75)}


def concept_of(class_name: str) -> str | None:
    name = class_name.lower()
    for concept, (keywords, _) in CONCEPTS.items():
        if any(k in name for k in keywords):
            return concept
    return None


def _band_index(wavelengths: Sequence[float], lo: float, hi: float) -> int | None:
    inside = [i for i, w in enumerate(wavelengths) if lo <= w <= hi]
    centre = (lo + hi) / 2
    return min(inside, key=lambda i: abs(wavelengths[i] - centre)) if inside else None


class SpectralIndexRule(torch.nn.Module):
    """``model(reflectance [B,C,H,W], wavelengths [C], class_names) -> scores [B,K,H,W]``.

    Receives physical values (``normalise = False``): reflectance-like inputs are needed
    for spectral indices. Needs red and near-infrared bands; uses green, SWIR-1.6 and blue
    when present.
    """

    normalise = False
    fingerprint = "spectral-rule-v2"

    def validate(self, wavelengths: Sequence[float], class_names: Sequence[str]) -> None:
        wl = [float(w) for w in wavelengths]
        missing = [name for name in ("red", "nir") if _band_index(wl, *BANDS[name]) is None]
        if missing:
            have = ", ".join(f"{w:g}" for w in wl)
            raise LandSegError(
                f"model 'spectral-rule' needs {' and '.join(missing)} band(s) "
                f"({', '.join(f'{BANDS[m][0]}-{BANDS[m][1]} µm' for m in missing)}); the scene has bands at {have} µm"
            )
        unknown = [c for c in class_names if concept_of(c) is None]
        if unknown:
            raise LandSegError(
                f"model 'spectral-rule' cannot map class {unknown[0]!r}; it knows: {', '.join(CONCEPTS)}"
            )

    def forward(self, image: torch.Tensor, wavelengths: torch.Tensor, class_names: Sequence[str]) -> torch.Tensor:
        wl = [float(w) for w in wavelengths]
        self.validate(wl, class_names)
        return concept_scores(spectral_features(image, wl), [concept_of(name) for name in class_names])


def uses_band(wavelength: float) -> bool:
    """Whether a band at ``wavelength`` µm falls in one of the windows the rule reads."""
    return any(lo <= wavelength <= hi for lo, hi in BANDS.values())


def has_rule_bands(wavelengths: Sequence[float]) -> bool:
    """Whether the bands include the red and near-infrared bands the rule needs."""
    wl = [float(w) for w in wavelengths]
    return all(_band_index(wl, *BANDS[name]) is not None for name in ("red", "nir"))


def concept_scores(features: torch.Tensor, concepts: Sequence[str]) -> torch.Tensor:
    """Negative scaled squared distance to each concept's prototype: features [B, 3, H, W] -> [B, K, H, W]."""
    scales = torch.tensor(SCALES, dtype=features.dtype, device=features.device).view(1, 3, 1, 1)
    protos = torch.tensor([CONCEPTS[c][1] for c in concepts], dtype=features.dtype, device=features.device)
    diff = (features[:, None] - protos[None, :, :, None, None]) / scales[:, None]  # [B, K, 3, H, W]
    return -(diff ** 2).sum(dim=2)


def spectral_features(x: torch.Tensor, wl: Sequence[float]) -> torch.Tensor:
    """(NDVI, water index, visible brightness) of reflectance [B, C, H, W] -> [B, 3, H, W]."""

    def band(name: str) -> torch.Tensor | None:
        i = _band_index(wl, *BANDS[name])
        return None if i is None else x[:, i]

    red, nir, green, swir, blue = (band(n) for n in ("red", "nir", "green", "swir1", "blue"))
    eps = 1e-6
    ndvi = (nir - red) / (nir + red + eps)
    wet_a = green if green is not None else red
    wet_b = swir if swir is not None else nir
    water = (wet_a - wet_b) / (wet_a + wet_b + eps)
    visible = [b for b in (blue, green, red) if b is not None]
    brightness = torch.stack(visible).mean(dim=0)
    return torch.stack([ndvi.clamp(-1, 1), water.clamp(-1, 1), brightness], dim=1)
