"""Avatar pictures chosen by the user: any common image format in, a clean PNG out."""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

from neuralrp.errors import InvalidInput

FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")
MAX_PIXELS = 4096 * 4096
MAX_SIDE = 1024  # SillyTavern shows avatars at 400x600; more is only disk and card-file weight


def avatar_png(data: bytes, filename: str) -> bytes:
    """The picture as PNG (first frame, RGB(A), at most MAX_SIDE a side, no metadata); InvalidInput if unreadable."""
    if not data:
        raise InvalidInput(f"{filename}: the file is empty; choose a PNG, JPEG, WebP or GIF picture")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format not in FORMATS:
                raise InvalidInput(f"{filename}: {image.format} pictures are not supported; use PNG, JPEG, WebP or GIF")
            if image.width * image.height > MAX_PIXELS:
                raise InvalidInput(f"{filename}: the picture is {image.width}x{image.height} pixels; "
                                   f"the limit is {MAX_PIXELS // 1_000_000} megapixels")
            image.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
        raise InvalidInput(f"{filename}: not a picture NeuralRP can read ({e.__class__.__name__})") from e
    return _encode(image)


def _encode(image: Image.Image) -> bytes:
    """Flatten to RGB(A), shrink to MAX_SIDE, write a PNG without text chunks."""
    mode = "RGBA" if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info else "RGB"
    clean = image.convert(mode)
    clean.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    clean.save(out, format="PNG", optimize=True)
    return out.getvalue()
