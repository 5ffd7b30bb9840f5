"""What a model needs to know about a dataset before any image is read."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    num_classes: int
    in_channels: int
    resolution: int  # side of the square images the model sees
    rotate: float = 0.0  # max degrees of random rotation in training augmentation
    crop_padding: int = 4

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.in_channels, self.resolution, self.resolution)


KNOWN = {
    "cifar10": DatasetInfo("cifar10", 10, 3, 32),
    "cifar100": DatasetInfo("cifar100", 100, 3, 32),
    "tinyimagenet": DatasetInfo("tinyimagenet", 200, 3, 64, rotate=20.0),
    # 28x28 images are zero-padded to 32x32 so that every family's pooling fits.
    "fashionmnist": DatasetInfo("fashionmnist", 10, 1, 32),
    "synthetic": DatasetInfo("synthetic", 10, 3, 32),
}
