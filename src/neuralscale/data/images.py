"""Decoding image files into uint8 CHW tensors of one size."""

from __future__ import annotations

import io
import warnings

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import NeuralscaleError

EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def _open(blob: bytes, where: str) -> Image.Image:
    """The image in `blob`. PIL refuses images of over about 179M pixels as possible decompression bombs (and
    warns, in two lines, above half that): here the user's own files, refused in one line, warned of not at all."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(blob))
    except Image.DecompressionBombError:
        raise NeuralscaleError(f"{where} is too large to decode (over {2 * Image.MAX_IMAGE_PIXELS:,} pixels); "
                               "resize it first") from None
    except UnidentifiedImageError:  # PIL's message names its in-memory buffer ("<_io.BytesIO object at 0x...>")
        raise NeuralscaleError(f"{where} is not a readable image (not a format PIL can identify)") from None
    except (OSError, ValueError) as e:
        raise NeuralscaleError(f"{where} is not a readable image ({e})") from None


def decode(blob: bytes, size: int, where: str) -> torch.Tensor:
    """RGB uint8 tensor (3, size, size); resized (antialiased) if needed."""
    img = _open(blob, where)
    try:
        img = _rgb(img, where)
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise NeuralscaleError(f"{where} is not a readable image ({e})") from None
    if img.size != (size, size):
        img = img.resize((size, size), Image.BILINEAR)
    return torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).view(size, size, 3).permute(2, 0, 1).clone()


def _rgb(img: Image.Image, where: str) -> Image.Image:
    """8-bit RGB.  16-bit grey images (PNG's I;16, which PIL's own conversion clips to white) are scaled to 8
    bits; floating-point images, whose range nothing states, are refused."""
    if img.mode.startswith("I;16") or img.mode == "I":
        a = np.asarray(img, dtype=np.float64)
        if a.size and (a.min() < 0 or a.max() > 65535):
            raise NeuralscaleError(f"{where} holds 32-bit integer pixels outside 0..65535; save it as 8 or 16 bits")
        img = Image.fromarray(np.rint(a / 257.0).astype(np.uint8), "L")
    elif img.mode == "F":
        raise NeuralscaleError(f"{where} holds floating-point pixels, whose range is unknown; save it as 8 or 16 "
                               "bits per channel")
    return img.convert("RGB")


def stack(images: list[torch.Tensor]) -> torch.Tensor:
    if not images:
        return torch.empty(0, 3, 1, 1, dtype=torch.uint8)
    return torch.stack(images)


def image_size(blob: bytes, where: str) -> int:
    return max(_open(blob, where).size)



