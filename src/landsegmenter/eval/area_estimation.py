"""Good-practice area estimation from a stratified reference sample (Olofsson et al. 2014).

The strata are the map classes. With ``n[i, j]`` sample points mapped as class ``i`` and
labelled ``j`` in the reference, ``n[i]`` points in stratum ``i`` and ``W[i]`` the share of
the mapped area in class ``i`` (Olofsson et al. 2014, Remote Sensing of Environment 148:42-57):

* ``p[i, j] = W[i] * n[i, j] / n[i]``: the error matrix in proportions of area;
* ``A[j] = A_total * p[:, j].sum()``: the error-adjusted area of class ``j``, with
  ``SE(p[.j]) = sqrt(sum_i W[i]^2 * f[i, j] * (1 - f[i, j]) / (n[i] - 1))``, ``f = n[i, j] / n[i]``;
* ``O = trace(p)``, ``U[i] = p[i, i] / p[i, :].sum()``, ``P[j] = p[j, j] / p[:, j].sum()``
  and their variances (the paper's eqs. 5-7; no finite population correction, as there).

Confidence intervals are ``estimate ± z * SE`` (z = 1.96 for 95 %), not truncated.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from landsegmenter.errors import LandSegError

Z95 = 1.96


@dataclass(frozen=True)
class AreaEstimate:
    """Estimates for ``K`` classes; areas in the unit of the mapped areas given."""

    class_names: list[str]
    counts: np.ndarray  # [K, K] sample counts, rows: map class, columns: reference class
    mapped_area: np.ndarray  # [K] mapped area per class
    proportions: np.ndarray  # [K, K] error matrix in area proportions (eq. 4)
    area: np.ndarray  # [K] error-adjusted area
    area_se: np.ndarray  # [K] its standard error
    users: np.ndarray  # [K] user's accuracy (NaN for a class never mapped)
    users_se: np.ndarray
    producers: np.ndarray  # [K] producer's accuracy (NaN for a class no reference point has)
    producers_se: np.ndarray
    overall: float
    overall_se: float
    z: float = Z95

    def to_dict(self, unit: str) -> dict:
        """JSON-ready: per class estimate, SE and CI half-width; ``unit`` names the area unit."""
        def value(x: float) -> float | None:
            return None if not np.isfinite(x) else float(x)

        classes = []
        for k, name in enumerate(self.class_names):
            classes.append({
                "class": name,
                "sample_points": int(self.counts[k].sum()),
                "mapped_area": value(self.mapped_area[k]),
                "estimated_area": value(self.area[k]),
                "estimated_area_se": value(self.area_se[k]),
                "estimated_area_ci": value(self.z * self.area_se[k]),
                "users_accuracy": value(self.users[k]),
                "users_accuracy_se": value(self.users_se[k]),
                "producers_accuracy": value(self.producers[k]),
                "producers_accuracy_se": value(self.producers_se[k]),
            })
        return {
            "estimator": "stratified (Olofsson et al. 2014, Remote Sens. Environ. 148:42-57)",
            "area_unit": unit,
            "confidence_level": 0.95 if self.z == Z95 else None,
            "z": self.z,
            "total_area": float(self.mapped_area.sum()),
            "sample_points": int(self.counts.sum()),
            "overall_accuracy": self.overall,
            "overall_accuracy_se": self.overall_se,
            "classes": classes,
            "error_matrix_counts": self.counts.astype(int).tolist(),
            "error_matrix_proportions": self.proportions.tolist(),
        }


def estimate_areas(counts: np.ndarray, mapped_area: Sequence[float], class_names: Sequence[str],
                   z: float = Z95) -> AreaEstimate:
    """Olofsson et al. (2014) estimates from sample counts ``[K, K]`` (rows: map) and mapped areas ``[K]``.

    A class with mapped area needs at least two sample points (its variance divides by
    ``n[i] - 1``); a class with no mapped area and no points drops out of the strata.
    """
    n = np.asarray(counts, dtype=np.float64)
    area_m = np.asarray(mapped_area, dtype=np.float64)
    k = len(class_names)
    if n.shape != (k, k) or area_m.shape != (k,):
        raise ValueError(f"counts must be [{k}, {k}] and mapped areas [{k}], got {n.shape} and {area_m.shape}")
    check_strata(n.sum(axis=1), area_m, class_names)
    weights = area_m / area_m.sum()
    n_i = n.sum(axis=1)
    sampled = n_i > 0
    f = np.divide(n, n_i[:, None], out=np.zeros_like(n), where=sampled[:, None])  # n_ij / n_i.
    p = weights[:, None] * f
    col = p.sum(axis=0)
    dof = np.where(n_i > 1, n_i - 1, np.inf)[:, None]  # unsampled strata have zero weight
    area_se = np.sqrt((weights[:, None] ** 2 * f * (1 - f) / dof).sum(axis=0)) * area_m.sum()
    users = np.where(sampled, np.diag(f), np.nan)
    users_var = users * (1 - users) / dof[:, 0]
    producers, producers_se = _producers(f, n_i, area_m, col, users, dof[:, 0])
    overall_var = float(np.nansum(weights**2 * users_var))
    return AreaEstimate(
        class_names=list(class_names), counts=n, mapped_area=area_m, proportions=p,
        area=col * area_m.sum(), area_se=area_se,
        users=users, users_se=np.sqrt(users_var),
        producers=producers, producers_se=producers_se,
        overall=float(np.trace(p)), overall_se=float(np.sqrt(overall_var)), z=z,
    )


def _producers(f: np.ndarray, n_i: np.ndarray, area_m: np.ndarray, col: np.ndarray, users: np.ndarray,
               dof: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Producer's accuracy and its SE (the paper's eq. 7; ``N`` are mapped areas, in any unit)."""
    k = len(col)
    diag = np.diag(f) * area_m / area_m.sum()
    producers = np.divide(diag, col, out=np.full(k, np.nan), where=col > 0)
    estimated_n = (area_m[:, None] * f).sum(axis=0)  # N̂_.j: estimated reference area of class j
    se = np.full(k, np.nan)
    for j in np.flatnonzero(col > 0):
        own = area_m[j] ** 2 * (1 - producers[j]) ** 2 * users[j] * (1 - users[j]) / dof[j]
        others = [i for i in range(k) if i != j]
        rest = producers[j] ** 2 * sum(area_m[i] ** 2 * f[i, j] * (1 - f[i, j]) / dof[i] for i in others)
        se[j] = np.sqrt((own + rest) / estimated_n[j] ** 2)
    return producers, se


def check_strata(points_per_stratum: np.ndarray, mapped_area: np.ndarray, class_names: Sequence[str]) -> None:
    """Every mapped class needs two sample points or more; say which do not have them."""
    if not (mapped_area > 0).any():
        raise LandSegError("the map has no mapped area: nothing to estimate")
    thin = [f"{name} ({int(c)})" for name, c, a in zip(class_names, points_per_stratum, mapped_area)
            if a > 0 and c < 2]
    if thin:
        raise LandSegError(
            f"strata with fewer than two sample points (their variance is undefined): {', '.join(thin)}; "
            "label more points there"
        )
    empty = [name for name, c, a in zip(class_names, points_per_stratum, mapped_area) if a == 0 and c > 0]
    if empty:
        raise LandSegError(f"sample points fall in classes with no mapped area: {', '.join(empty)}")
