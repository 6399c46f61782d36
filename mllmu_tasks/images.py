"""Decoding the benchmark's images safely.

An image cell is ``{"bytes": ..., "path": ...}`` (``datasets.Image(decode=False)``).
Bytes win; a path is read only inside the configuration's own directory of a
local source, never outside it (no ``..``, no absolute paths, no symlink escape).
Every image is converted to RGB (RGBA, palette, grayscale, CMYK inputs) by
:func:`to_rgb`, which also scales high-bit-depth grayscale to 8 bits.
"""

from __future__ import annotations

import io
import os

from PIL import Image, UnidentifiedImageError

from .schema import SchemaError


def safe_image_path(path: str, root: str | None) -> str:
    """Resolve a dataset's relative image path inside ``root``.

    Raises:
        ValueError: no root (hub rows must embed bytes), an absolute path, or a
            path that resolves outside ``root``.
    """
    if root is None:
        raise ValueError(f"image has no bytes and path {path!r} cannot be read: the source has no local directory")
    if os.path.isabs(path):
        raise ValueError(f"absolute image path {path!r} is not allowed; paths must be relative to {root}")
    real_root = os.path.realpath(root)
    full = os.path.realpath(os.path.join(real_root, path))
    if os.path.commonpath([full, real_root]) != real_root:
        raise ValueError(f"image path {path!r} escapes the dataset directory {root}")
    return full


def to_rgb(img: Image.Image) -> Image.Image:
    """An RGB copy of ``img``; 16-bit (``I;16*``, ``I``) and float (``F``) grayscale scaled to 0-255 first.

    PIL's ``convert("RGB")`` clips such pixels at 255, so a 16-bit photograph
    turns almost pure white (and the released code feeds it so). Here:
    ``I;16*`` pixels x 255 / 65535; ``I`` the same when any pixel exceeds 255,
    else as they are; ``F`` x 255 when every pixel is within 0-1, else clipped
    to 0-255. Rounded to the nearest integer. Other modes: ``convert("RGB")``.
    """
    mode = img.mode
    if not (mode.startswith("I;16") or mode in ("I", "F")):
        return img.convert("RGB")  # a copy also for RGB: the caller may close the file it came from
    import numpy as np

    pixels = np.asarray(img, dtype=np.float64)
    if mode.startswith("I;16") or (mode == "I" and pixels.max(initial=0) > 255):
        pixels = pixels * 255.0 / 65535.0
    elif mode == "F" and pixels.size and pixels.min() >= 0.0 and pixels.max() <= 1.0:
        pixels = pixels * 255.0
    gray = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    return Image.fromarray(gray, mode="L").convert("RGB")


#: Longest side (pixels) an image is decoded to: above every VLM processor's working size (LLaVA 336,
#: Qwen2-VL's default max_pixels ~3584 x 3584), so only images larger than any model uses are reduced.
MAX_SIDE = 4096


def open_rgb(data: bytes) -> Image.Image:
    """Decode encoded image bytes to RGB (:func:`to_rgb`), reduced to :data:`MAX_SIDE` on its longest side.

    JPEGs are decoded at a reduced scale directly (``draft``), so a
    10000 x 10000 photograph costs a fraction of a second and tens of
    megabytes; other formats are decoded, then reduced (bicubic, aspect kept).

    Raises:
        PIL.UnidentifiedImageError, OSError, ValueError, PIL.Image.DecompressionBombError:
            not an image, corrupt, or over PIL's pixel limit.
    """
    with Image.open(io.BytesIO(data)) as img:
        if max(img.size) > MAX_SIDE:
            img.draft("RGB", (MAX_SIDE, MAX_SIDE))  # JPEG only; a no-op for other formats
        img.load()
        if max(img.size) > MAX_SIDE:
            img.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.BICUBIC)
        return to_rgb(img)


#: Modes PNG stores: lm-eval's ``--log_samples`` hashes each document image by saving it as PNG.
PNG_MODES = ("1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA")


def bounded_bytes(data: bytes) -> bytes:
    """``data`` itself when its image fits :data:`MAX_SIDE` in a PNG-storable mode, else RGB PNG bytes.

    Documents keep image bytes that ``datasets`` decodes again at every
    access: an oversized image is reduced once, here, and a CMYK (or other
    non-PNG mode) image converted to RGB once, as :func:`open_rgb` would at
    every use (same pixels; lm-eval's ``--log_samples`` cannot hash CMYK). A
    normal image is untouched.
    """
    with Image.open(io.BytesIO(data)) as img:  # reads the header only
        if max(img.size) <= MAX_SIDE and img.mode in PNG_MODES:
            return data
    buf = io.BytesIO()
    open_rgb(data).save(buf, format="PNG")
    return buf.getvalue()


def checked_image_bytes(cell, *, root: str | None, config: str, row: int, field: str,
                        profile_id: str | None = None) -> bytes:
    """The encoded bytes of one image cell, after checking that they decode.

    Args:
        cell: ``{"bytes": bytes | None, "path": str | None}`` or None.
        root: directory relative paths are read under (None for hub data).
        config, row, field, profile_id: where the cell is, for the error message.

    Raises:
        SchemaError: the image is missing, unreadable, corrupt, or its path
            escapes the dataset directory; the message names config, row and field.
    """
    if not cell or (cell.get("bytes") is None and not cell.get("path")):
        raise SchemaError("missing image", config=config, row=row, field=field, profile_id=profile_id)
    try:
        data = cell.get("bytes")
        if data is None:
            with open(safe_image_path(cell["path"], root), "rb") as f:
                data = f.read()
        open_rgb(data)
        return data
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise SchemaError(f"unreadable image ({type(err).__name__}: {err})", config=config, row=row,
                          field=field, profile_id=profile_id) from err


def decode_image(cell, *, root: str | None, config: str, row: int, field: str,
                 profile_id: str | None = None) -> Image.Image:
    """Decode one image cell into an RGB ``PIL.Image`` (same arguments and errors as :func:`checked_image_bytes`)."""
    return open_rgb(checked_image_bytes(cell, root=root, config=config, row=row, field=field,
                                         profile_id=profile_id))
