"""The legend of a subset's label product: from the registry, a legend file, or inline."""
from __future__ import annotations

from dataclasses import dataclass

from landsegmenter.las.manifest import LabelSpec
from landsegmenter.taxonomy.legends import Legend, legend_from_dict, legend_from_spec, normalize_name

WATER_NAMES = frozenset(
    normalize_name(n)
    for n in (
        "water",
        "open water",
        "permanent water bodies",
        "water bodies",
        "water body",
        "inland waters",
        "marine waters",
        "sea and ocean",
        "sea",
        "ocean",
        "river",
        "lake",
        "reservoir",
        "water courses",
    )
)


@dataclass(frozen=True)
class Taxonomy:
    """A legend plus the name under which the store records it."""

    key: str
    legend: Legend

    @property
    def class_names(self) -> list[str]:
        return list(self.legend.names)

    def water_indices(self, names: tuple[str, ...] | None) -> list[int]:
        """Indices of the water classes: the given names, or every class named like open water."""
        if names is None:
            return [i for i, c in enumerate(self.legend.classes) if set(c.lookup_names) & WATER_NAMES]
        return [self.legend.index_of(self.legend.by_name(n).code) for n in names]


def resolve_taxonomy(spec: LabelSpec) -> Taxonomy:
    """The legend named by a manifest's ``label: legend:`` and the taxonomy key to record."""
    legend = spec.legend
    if isinstance(legend, str):
        resolved = legend_from_spec(legend)
    else:
        resolved = legend_from_dict(legend, "inline legend")
    return Taxonomy(spec.taxonomy or resolved.key, resolved)
