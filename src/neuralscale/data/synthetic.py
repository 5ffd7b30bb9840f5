"""A small, learnable, fully deterministic dataset for tests and smoke runs.

Each class is a smooth random colour pattern; images are that pattern with a
random shift and noise, so a network can learn it in a few steps."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F


def make(num_train: int = 2000, num_test: int = 500, num_classes: int = 10, size: int = 32,
         channels: int = 3, seed: int = 0) -> dict:
    """The dataset (uint8 images, int64 labels, class names): the same for the same arguments, made once per
    process and copied for each caller (a sweep's runs each load it: 0.1 s each at the defaults)."""
    made = _made(num_train, num_test, num_classes, size, channels, seed)
    return {k: v.clone() if torch.is_tensor(v) else list(v) for k, v in made.items()}


@functools.lru_cache(maxsize=4)
def _made(num_train: int, num_test: int, num_classes: int, size: int, channels: int, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    templates = F.interpolate(torch.rand(num_classes, channels, 4, 4, generator=g), size=size,
                              mode="bilinear", align_corners=False) * 255

    def part(n):
        y = torch.arange(n) % num_classes
        y = y[torch.randperm(n, generator=g)]
        # template + 40 * noise, in place (the same sums, without three more float copies of the images); the
        # shift rolls the uint8 images, which commutes with the elementwise clamp and cast
        x = torch.randn(n, channels, size, size, generator=g).mul_(40).add_(templates[y])
        shifts = torch.randint(-3, 4, (2,), generator=g).tolist()
        return torch.roll(x.clamp_(0, 255).to(torch.uint8), shifts=shifts, dims=(2, 3)), y.to(torch.int64)

    train_x, train_y = part(num_train)
    test_x, test_y = part(num_test)
    return {"train_x": train_x, "train_y": train_y, "test_x": test_x, "test_y": test_y,
            "classes": [f"class{i}" for i in range(num_classes)]}
