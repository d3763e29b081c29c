"""Re-encoding images so that only their pixels are released (no EXIF, text chunks, ICC, XMP).

PNG files can carry text chunks (``tEXt``/``iTXt``/``zTXt``: a plotting library writes the
software and sometimes the source path or the data), EXIF (``eXIf``: camera, GPS, user),
ICC profiles and private chunks. ``reencode`` decodes the image with Pillow, copies only the
pixels into a fresh image and writes a new PNG with nothing else; that file, not the submitted
one, is what gets released. Animated PNGs are refused (frames after the first would be
dropped silently), and so are images above the pixel limit (decompression bombs).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

KEEP_MODES = {"1", "L", "LA", "RGB", "RGBA", "I;16"}


class ImageRefused(ValueError):
    """The image cannot be released as it is; the message says why."""


@dataclass(frozen=True)
class Reencoded:
    path: Path
    sha256: str
    size: int
    width: int
    height: int
    removed: list[str]  # metadata keys that were in the submitted file


def metadata_keys(im: Image.Image) -> list[str]:
    keys = set(im.info) - {"transparency"}
    keys |= {f"text:{k}" for k in getattr(im, "text", {}) or {}}
    return sorted(keys)


def reencode(source: Path, out_dir: Path, max_pixels: int) -> Reencoded:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as im:
                if im.format != "PNG":
                    raise ImageRefused(f"content is {im.format}, not PNG")
                width, height = im.size
                if width * height > max_pixels:
                    raise ImageRefused(f"{width}x{height} pixels is more than the limit of "
                                       f"{max_pixels:,}")
                if getattr(im, "n_frames", 1) > 1:
                    raise ImageRefused(f"animated PNG with {im.n_frames} frames")
                im.load()
                removed = metadata_keys(im)
                clean = _pixels_only(im)
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as e:
        raise ImageRefused(f"not a readable PNG image: {e}") from None
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".reencode-{os.getpid()}-{id(clean)}.png"
    clean.save(tmp, format="PNG", optimize=False)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    path = out_dir / f"{digest}.png"
    os.replace(tmp, path)
    return Reencoded(path, digest, path.stat().st_size, width, height, removed)


def _pixels_only(im: Image.Image) -> Image.Image:
    if im.mode not in KEEP_MODES:
        im = im.convert("RGBA" if "A" in im.getbands() or "transparency" in im.info else "RGB")
    return Image.frombytes(im.mode, im.size, im.tobytes())
