"""What a model needs to know about a dataset before any image is read."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import NeuralscaleError


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    num_classes: int
    in_channels: int
    resolution: int  # side of the square images the model sees
    rotate: float = 0.0  # max degrees of random rotation in training augmentation
    crop_padding: int = 4

    def __post_init__(self):
        """A model's shapes and costs are computed from these (by formula for the paper's families, where nothing
        runs a model that could fail on them): each must be a whole number of at least 1."""
        for field in ("num_classes", "in_channels", "resolution"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise NeuralscaleError(f"dataset {self.name!r}: {field} must be a whole number of at least 1, "
                                       f"got {value!r}")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.in_channels, self.resolution, self.resolution)


def dataset_key(name: str) -> str:
    """A dataset's name as KNOWN and PROTOCOLS key it, from any spelling (`Fashion-MNIST`, `tiny_imagenet`)."""
    return name.lower().replace("-", "").replace("_", "")


KNOWN = {
    "cifar10": DatasetInfo("cifar10", 10, 3, 32),
    "cifar100": DatasetInfo("cifar100", 100, 3, 32),
    "tinyimagenet": DatasetInfo("tinyimagenet", 200, 3, 64, rotate=20.0),
    # 28x28 images are zero-padded to 32x32 so that every family's pooling fits.
    "fashionmnist": DatasetInfo("fashionmnist", 10, 1, 32),
    "synthetic": DatasetInfo("synthetic", 10, 3, 32),
}

# how each reader makes the images a model sees from the dataset's files (an exported network is given them so)
IMAGES_MADE = {"fashionmnist": "Fashion-MNIST's 28 x 28 grey images zero-padded by 2 pixels a side to 32 x 32, as "
                               "its reader pads them (not resized)",
               "cifar10": "CIFAR-10's 32 x 32 images as they are", "cifar100": "CIFAR-100's 32 x 32 images as they are",
               "tinyimagenet": "TinyImageNet's 64 x 64 images as they are",
               "imagefolder": "an image folder's images resized to the square by PIL's bilinear resize, as its "
                              "reader resizes them"}


def images_made(dataset: str) -> str:
    """How `dataset`'s reader made the images its models see (IMAGES_MADE), in words."""
    return IMAGES_MADE.get(dataset_key(dataset.split(":", 1)[0]), "as the dataset's reader made its images")


@dataclass(frozen=True)
class Protocol:
    """How the original implementation trains, prunes and compares on a dataset: the one table that the descent
    (DescentConfig.resolve), the training preset (train.paper_config), the sweep preset (sweep.preset) and the
    command line's help read."""

    prune_interval: int = 50  # mini-batches between pruning steps
    prune_batch_size: int = 256
    prune_schedule: str = "prune"  # the descent's learning-rate schedule (train.py)
    prune_crop_padding: int | None = None  # the descent's random-crop padding; None: the dataset's own
    epochs: int = 300  # the paper's training epochs
    lr_epochs: tuple[int, ...] = (100, 200, 250)  # the original's epochs (counted from 1) that start at lr / 10
    batch_size: int = 128
    ratios: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)  # the paper's uniform ratios
    finetune_epochs: int = 40  # the pruning baselines' fine-tuning

    def milestones(self) -> tuple[float, ...]:
        """The trainer's milestones as shares of the epochs: it counts epochs from 0, so the epoch before each."""
        return tuple((e - 1) / self.epochs for e in self.lr_epochs)


PROTOCOLS = {
    "tinyimagenet": Protocol(prune_interval=100, prune_batch_size=100, prune_schedule="prune-tinyimagenet",
                             prune_crop_padding=0, epochs=150, lr_epochs=(50, 100, 150),
                             ratios=(0.25, 0.5, 0.75, 1.0), finetune_epochs=20),
}
DEFAULT_PROTOCOL = Protocol()  # CIFAR-10/100, and what other datasets follow


def protocol(dataset: str) -> Protocol:
    """The original's protocol for `dataset`, by any spelling of its name (CIFAR's for any dataset it did not
    use)."""
    return PROTOCOLS.get(dataset_key(dataset) if isinstance(dataset, str) else dataset, DEFAULT_PROTOCOL)

