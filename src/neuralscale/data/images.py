"""Decoding image files into uint8 CHW tensors of one size."""

from __future__ import annotations

import io

import torch
from PIL import Image, UnidentifiedImageError

from ..errors import NeuralscaleError

EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def decode(blob: bytes, size: int, where: str) -> torch.Tensor:
    """RGB uint8 tensor (3, size, size); resized (antialiased) if needed."""
    try:
        img = Image.open(io.BytesIO(blob)).convert("RGB")
    except (UnidentifiedImageError, OSError) as e:
        raise NeuralscaleError(f"{where} is not a readable image ({e})") from None
    if img.size != (size, size):
        img = img.resize((size, size), Image.BILINEAR)
    return torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).view(size, size, 3).permute(2, 0, 1).clone()


def stack(images: list[torch.Tensor]) -> torch.Tensor:
    if not images:
        return torch.empty(0, 3, 1, 1, dtype=torch.uint8)
    return torch.stack(images)


def image_size(blob: bytes, where: str) -> int:
    try:
        return max(Image.open(io.BytesIO(blob)).size)
    except (UnidentifiedImageError, OSError) as e:
        raise NeuralscaleError(f"{where} is not a readable image ({e})") from None



