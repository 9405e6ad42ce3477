"""What an avatar looks like, as plain data: garments with their colours, patterns
and coverage, hair and skin. text/appearance.py reads it from a prompt;
render/clothing_texture.py paints it."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

RGB = tuple[float, float, float]
SLOTS = ("bottom", "dress", "top", "outer", "shoes", "gloves", "scarf", "hat")   # painting order


@dataclass(frozen=True)
class Coverage:
    """How much of the body a garment covers and what it is made of (what the
    painter reads; a GarmentKind's defaults, copied onto each parsed Garment).

    sleeve: fraction of the arm covered from the shoulder to the wrist (None: no sleeves part);
    leg: fraction of the leg covered from the hip down to the ankle; skirt: legs covered as one
    tube (a horizontal hem) rather than per trouser leg; torso: "full" | "upper" | "lower" | None;
    neck: the garment covers the neck (turtleneck, hoodie); shaft: shoes/boots reach this fraction
    from the ankle up to the knee; crown: a hat covers this fraction of the head from the top;
    fabric: cotton | denim | knit | leather | silk | synthetic (the painter's weave and shading)."""
    sleeve: float | None = None
    leg: float | None = None
    skirt: bool = False
    torso: str | None = None
    neck: bool = False
    shaft: float | None = None
    crown: float | None = None
    fabric: str = "cotton"


@dataclass
class Garment:
    slot: str                          # one of SLOTS
    kind: str                          # a garment name of text/appearance.py's vocabulary
    colour: RGB                        # sRGB in [0, 1]
    colour_name: str
    pattern: str = "solid"             # "solid", "striped", "checked", "dotted", "floral", "camouflage"
    pattern_colour: RGB | None = None
    pattern_colour_name: str | None = None
    coverage: Coverage = Coverage()    # JSON keeps its fields flat (Appearance.to_json)
    phrase: str = ""                   # the prompt words it came from
    score: float = 0.0                 # similarity of those words to the garment entry
    colour_score: float | None = None  # None: the garment's default colour
    pattern_score: float | None = None


@dataclass
class Hair:
    colour: RGB | None = None          # None: the painter's seeded natural colour
    colour_name: str | None = None
    length: float | None = None        # 0 bald .. 1 long; None: unsaid (painter's default)
    length_name: str | None = None
    phrase: str = ""
    score: float = 0.0


@dataclass
class Appearance:
    garments: list[Garment] = field(default_factory=list)
    hair: Hair = field(default_factory=Hair)
    skin_tone: RGB | None = None       # None: from the body's phenotypes
    skin_tone_name: str | None = None
    style: str | None = None           # a style preset name the prompt asked for, or None
    scores: dict[str, float] = field(default_factory=dict)   # per field: similarity that decided it
    phrases: list[str] = field(default_factory=list)         # the chunks the prompt was cut into
    version: str = ""                  # the identity of the reader that made it

    def garment(self, slot: str) -> Garment | None:
        return next((g for g in self.garments if g.slot == slot), None)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        # Coverage fields stay top-level garment keys, as before Coverage existed.
        data["garments"] = [_flatten_coverage(g) for g in data["garments"]]
        return _rounded(data)


def _rounded(value: Any) -> Any:
    """Floats rounded to 4 decimals, through lists, tuples and dicts (JSON-ready)."""
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, (list, tuple)):
        return [_rounded(x) for x in value]
    if isinstance(value, dict):
        return {k: _rounded(x) for k, x in value.items()}
    return value


def _flatten_coverage(garment: dict[str, Any]) -> dict[str, Any]:
    """A garment's asdict() with its "coverage" dict's keys put in its place."""
    out: dict[str, Any] = {}
    for key, value in garment.items():
        if key == "coverage":
            out.update(value)
        else:
            out[key] = value
    return out
