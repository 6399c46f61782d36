"""Procedurally drawn portraits of the mini benchmark's profiles.

A portrait is a flat cartoon drawn with PIL on a ``size x size`` RGB canvas:
background (colour and an accent disc on one side), shirt, neck, face
(shape, skin tone), hair (style, colour), eyes, eyebrows, nose, mouth and
optional glasses, hat and beard. All choices come from a
:class:`random.Random` the caller seeds, so the same seed gives the same
pixels.

Distinctness: :func:`portrait_specs` gives every portrait its own
(background, shirt) colour pair while there are at most
``len(BACKGROUNDS) * len(SHIRTS)`` (= 120) portraits; those two regions
cover about 60 % of the canvas and the palettes are far apart, so any two
portraits differ by a clearly visible amount (the tests measure it). Beyond
120 the pairs repeat and only the other features tell portraits apart.

:func:`transformed_variants` makes the three transformed copies used by
``Test_Set`` (mirror + brightness, small rotation, crop-zoom + colour
shift). Coordinates are written for a 64-pixel canvas and scaled.
"""

from __future__ import annotations

import io
import itertools
import random
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageEnhance, ImageOps

BACKGROUNDS = (
    (236, 222, 178), (180, 214, 236), (198, 236, 190), (240, 190, 190), (214, 196, 240),
    (250, 236, 140), (160, 160, 170), (120, 180, 170), (240, 170, 110), (90, 110, 160),
    (250, 250, 250), (150, 120, 90),
)
SHIRTS = (
    (200, 30, 40), (30, 70, 180), (30, 140, 60), (240, 200, 20), (120, 40, 150),
    (20, 20, 20), (255, 140, 0), (0, 170, 200), (230, 90, 170), (110, 90, 60),
)
SKIN_TONES = ((255, 224, 196), (241, 194, 158), (224, 172, 125), (198, 134, 86),
              (160, 100, 62), (110, 68, 42))
HAIR_COLOURS = ((20, 15, 10), (90, 55, 25), (160, 100, 40), (225, 190, 110),
                (170, 60, 20), (200, 200, 200), (60, 60, 70), (120, 40, 90))
EYE_COLOURS = ((40, 30, 20), (60, 110, 170), (70, 130, 70), (120, 80, 40), (90, 90, 110))
HAIR_STYLES = ("short", "long", "bald", "bun", "side_part", "spiky")
FACE_WIDTHS = (18, 21, 24)  # half-widths on the 64-pixel canvas
MOUTHS = ("smile", "flat", "open")
HATS = (None, "cap", "beanie")

_REF = 64  # drawing coordinates are given for this canvas size


@dataclass(frozen=True)
class PortraitSpec:
    """Every visual choice of one portrait (colours are RGB tuples)."""

    background: tuple
    accent_left: bool
    shirt: tuple
    skin: tuple
    face_half_width: int
    hair_style: str
    hair: tuple
    eyes: tuple
    eye_radius: float
    mouth: str
    glasses: bool
    hat: str | None
    hat_colour: tuple
    beard: bool


def portrait_specs(count: int, rng: random.Random, bearded: list[bool] | None = None) -> list[PortraitSpec]:
    """Draw ``count`` specs; (background, shirt) pairs are unique up to 120 portraits.

    ``bearded[i]`` allows a beard on portrait ``i`` (e.g. only for men);
    ``None`` allows it everywhere.
    """
    pairs = list(itertools.product(range(len(BACKGROUNDS)), range(len(SHIRTS))))
    rng.shuffle(pairs)
    specs = []
    for i in range(count):
        bg, shirt = pairs[i % len(pairs)]
        may_beard = True if bearded is None else bearded[i]
        specs.append(_random_spec(rng, BACKGROUNDS[bg], SHIRTS[shirt], may_beard))
    return specs


def _random_spec(rng: random.Random, background: tuple, shirt: tuple, may_beard: bool) -> PortraitSpec:
    return PortraitSpec(
        background=background,
        accent_left=rng.random() < 0.5,
        shirt=shirt,
        skin=rng.choice(SKIN_TONES),
        face_half_width=rng.choice(FACE_WIDTHS),
        hair_style=rng.choice(HAIR_STYLES),
        hair=rng.choice(HAIR_COLOURS),
        eyes=rng.choice(EYE_COLOURS),
        eye_radius=rng.choice((2.0, 2.5, 3.0)),
        mouth=rng.choice(MOUTHS),
        glasses=rng.random() < 0.3,
        hat=rng.choice(HATS) if rng.random() < 0.3 else None,
        hat_colour=rng.choice(SHIRTS),
        beard=may_beard and rng.random() < 0.35,
    )


class _Canvas:
    """Draws on a ``size``-pixel image with coordinates given for 64 pixels."""

    def __init__(self, size: int, background: tuple):
        self.image = Image.new("RGB", (size, size), background)
        self.draw = ImageDraw.Draw(self.image)
        self.k = size / _REF

    def _xy(self, coords):
        flat = [v for c in coords for v in (c if isinstance(c, tuple) else (c,))]
        return [round(v * self.k) for v in flat]

    def ellipse(self, box, fill, outline=None, width=1):
        self.draw.ellipse(self._xy(box), fill=fill, outline=outline, width=max(1, round(width * self.k)))

    def rectangle(self, box, fill):
        self.draw.rectangle(self._xy(box), fill=fill)

    def polygon(self, points, fill):
        self.draw.polygon(self._xy(points), fill=fill)

    def line(self, points, fill, width=1):
        self.draw.line(self._xy(points), fill=fill, width=max(1, round(width * self.k)))

    def arc(self, box, start, end, fill, width=1):
        self.draw.arc(self._xy(box), start, end, fill=fill, width=max(1, round(width * self.k)))

    def chord(self, box, start, end, fill):
        self.draw.chord(self._xy(box), start, end, fill=fill)


def draw_portrait(spec: PortraitSpec, size: int = 64) -> Image.Image:
    """Render ``spec`` as an RGB ``size x size`` image.

    Raises:
        ValueError: ``size`` is below 16 pixels.
    """
    if size < 16:
        raise ValueError(f"portrait size must be at least 16 pixels, got {size}")
    c = _Canvas(size, spec.background)
    _draw_background_accent(c, spec)
    if spec.hair_style == "long":
        w = spec.face_half_width + 4
        c.rectangle((32 - w, 16, 32 + w, 46), spec.hair)
    _draw_body(c, spec)
    _draw_face(c, spec)
    _draw_hair(c, spec)
    if spec.hat:
        _draw_hat(c, spec)
    return c.image


def _draw_background_accent(c: _Canvas, spec: PortraitSpec) -> None:
    x = 2 if spec.accent_left else 50
    accent = tuple(255 - v for v in spec.background)
    c.ellipse((x, 2, x + 12, 14), accent)


def _draw_body(c: _Canvas, spec: PortraitSpec) -> None:
    c.ellipse((6, 48, 58, 84), spec.shirt)
    c.rectangle((28, 40, 36, 50), spec.skin)
    c.polygon(((28, 48), (36, 48), (32, 54)), spec.skin)  # v-neck


def _draw_face(c: _Canvas, spec: PortraitSpec) -> None:
    w, r = spec.face_half_width, spec.eye_radius
    c.ellipse((32 - w, 12, 32 + w, 46), spec.skin)
    if spec.beard:
        c.chord((32 - w, 20, 32 + w, 46), 0, 180, spec.hair)
        c.ellipse((27, 36, 37, 42), spec.skin)  # keep the mouth area visible
    for ex in (32 - w / 2, 32 + w / 2):
        c.ellipse((ex - r, 25 - r, ex + r, 25 + r), (255, 255, 255))
        c.ellipse((ex - r / 2, 25 - r / 2, ex + r / 2, 25 + r / 2), spec.eyes)
        c.line(((ex - r - 1, 20), (ex + r + 1, 20)), spec.hair, width=1.5)
        if spec.glasses:
            c.ellipse((ex - r - 2, 25 - r - 2, ex + r + 2, 25 + r + 2), None, outline=(30, 30, 30), width=1)
    c.line(((32, 28), (31, 33), (33, 33)), (120, 70, 50), width=1)
    _draw_mouth(c, spec.mouth)


def _draw_mouth(c: _Canvas, mouth: str) -> None:
    colour = (150, 40, 50)
    if mouth == "smile":
        c.arc((26, 33, 38, 41), 20, 160, colour, width=1.5)
    elif mouth == "flat":
        c.line(((28, 39), (36, 39)), colour, width=1.5)
    else:
        c.ellipse((29, 37, 35, 42), colour)


def _draw_hair(c: _Canvas, spec: PortraitSpec) -> None:
    w, style, hair = spec.face_half_width, spec.hair_style, spec.hair
    if style == "bald":
        return
    if style in ("short", "long", "bun"):
        c.chord((32 - w - 1, 9, 32 + w + 1, 34), 180, 360, hair)
    if style == "bun":
        c.ellipse((26, 2, 38, 13), hair)
    elif style == "side_part":
        c.chord((32 - w - 1, 9, 32 + w + 1, 34), 180, 360, hair)
        c.polygon(((32 - w, 20), (32 - w, 12), (40, 10), (32 + w, 16)), hair)
    elif style == "spiky":
        spikes = [(32 - w + i * w / 3, 16) for i in range(7)]
        for (x, y) in spikes:
            c.polygon(((x - 4, y + 2), (x + 4, y + 2), (x, y - 9)), hair)


def _draw_hat(c: _Canvas, spec: PortraitSpec) -> None:
    w = spec.face_half_width
    if spec.hat == "cap":
        c.chord((32 - w, 6, 32 + w, 30), 180, 360, spec.hat_colour)
        c.rectangle((32, 16, 32 + w + 8, 19), spec.hat_colour)  # brim to one side
    else:
        c.chord((32 - w - 2, 4, 32 + w + 2, 32), 180, 360, spec.hat_colour)
        c.rectangle((32 - w - 2, 15, 32 + w + 2, 19), tuple(v // 2 for v in spec.hat_colour))


def transformed_variants(image: Image.Image, rng: random.Random) -> list[Image.Image]:
    """Three transformed copies of a portrait for ``Test_Set``, same size and mode.

    1. mirrored, brightness x1.12-1.25; 2. rotated 6-12 degrees either way
    (corners filled with the top-left pixel's colour); 3. crop-zoom on
    76-86 % of the canvas at a random offset, saturation x1.4-1.7 and a
    red/blue shift. Every copy differs from the original even for a
    left-right symmetric drawing.
    """
    size = image.width
    background = image.getpixel((0, 0))
    mirrored = ImageEnhance.Brightness(ImageOps.mirror(image)).enhance(rng.uniform(1.12, 1.25))
    angle = rng.choice((-1, 1)) * rng.uniform(6, 12)
    rotated = image.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=background)
    side = round(size * rng.uniform(0.76, 0.86))
    x0, y0 = rng.randint(0, size - side), rng.randint(0, size - side)
    zoomed = image.crop((x0, y0, x0 + side, y0 + side)).resize((size, size), Image.Resampling.BILINEAR)
    shifted = _colour_shift(ImageEnhance.Color(zoomed).enhance(rng.uniform(1.4, 1.7)), rng.randint(12, 28))
    return [mirrored, rotated, shifted]


def _colour_shift(image: Image.Image, amount: int) -> Image.Image:
    r, g, b = image.split()
    r = r.point(lambda v: min(255, v + amount))
    b = b.point(lambda v: max(0, v - amount))
    return Image.merge("RGB", (r, g, b))


def png_bytes(image: Image.Image) -> bytes:
    """Encode an image as PNG (deterministic for a given Pillow/zlib)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
