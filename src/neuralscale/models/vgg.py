"""VGG11 with batch norm, as in the original NeuralScale code.

Eight 3x3 convolutions (with bias) each followed by BN, a gate and ReLU, five
2x2 max-pools, and one linear classifier.  The original flattens the 1x1 map
left after the last pool; we average-pool first, which is the identity at 32x32
and lets other resolutions work with the same parameter count.
"""

from __future__ import annotations

from torch import nn

from .gate import Gate
from .resizing import resize_tensors

BASE_WIDTHS = (64, 128, 256, 256, 512, 512, 512, 512)
LAYER_NAMES = tuple(f"conv{i + 1}" for i in range(8))
POOL_AFTER = {0, 1, 3, 5, 7}  # a max-pool follows these convolutions


class VGG11(nn.Module):
    def __init__(self, widths: list[int], num_classes: int, in_channels: int = 3):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = in_channels
        for i, w in enumerate(widths):
            bn = nn.BatchNorm2d(w)
            layers += [nn.Conv2d(c_in, w, 3, padding=1), bn, Gate(i, w, bn), nn.ReLU(inplace=True)]
            if i in POOL_AFTER:
                layers.append(nn.MaxPool2d(2, 2))
            c_in = w
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_in, num_classes)
        for m in self.modules():  # the original's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 0.5)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.pool(self.features(x)).flatten(1)
        return self.classifier(x)


def costs(widths, num_classes: int, in_channels: int, resolution: int) -> tuple[int, int]:
    """(parameters, MACs per image) of `VGG11(widths, ...)` on square images of this side, by formula: what a
    built model counts (accounting.py), without building one. Each convolution keeps its input's size (3x3,
    padding 1) and each max-pool halves it, rounding down; the classifier sees one position (the average pool)."""
    params = macs = 0
    c_in, side = in_channels, resolution
    for i, w in enumerate(widths):
        params += 9 * c_in * w + w + 2 * w  # convolution with bias, batch norm's scale and shift
        macs += side * side * 9 * c_in * w
        if i in POOL_AFTER:
            side //= 2
        c_in = w
    return params + c_in * num_classes + num_classes, macs + c_in * num_classes


def state_shapes(widths, num_classes: int, in_channels: int = 3) -> dict[str, tuple[int, ...]]:
    """The shape of every entry of `VGG11(widths, ...)`'s state dict, without building it."""
    out: dict[str, tuple[int, ...]] = {}
    c_in, at = in_channels, 0  # at: the conv's index in `features`
    for i, w in enumerate(widths):
        out |= {f"features.{at}.weight": (w, c_in, 3, 3), f"features.{at}.bias": (w,)}
        out |= {f"features.{at + 1}.{k}": (w,) for k in ("weight", "bias", "running_mean", "running_var")}
        out[f"features.{at + 1}.num_batches_tracked"] = ()
        at += 5 if i in POOL_AFTER else 4
        c_in = w
    return out | {"classifier.weight": (num_classes, c_in), "classifier.bias": (num_classes,)}


def resize(model: VGG11, widths) -> None:
    """`model` given these widths in place: its convolutions', norms' and classifier's sizes and its gates'
    widths; every resized tensor is left on meta for the caller to assign (a pruning step needs no rebuild)."""
    c_in = model.features[0].in_channels
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    norms = [m for m in model.features if isinstance(m, nn.BatchNorm2d)]
    gates = [m for m in model.features if isinstance(m, Gate)]
    for conv, bn, gate, w in zip(convs, norms, gates, widths, strict=True):
        conv.in_channels, conv.out_channels = c_in, w
        resize_tensors(conv, weight=(w, c_in, 3, 3), bias=(w,))
        bn.num_features = w
        resize_tensors(bn, weight=(w,), bias=(w,), running_mean=(w,), running_var=(w,))
        gate.width, gate.ones = w, None  # as a new gate: a mask of the old width would not fit
        c_in = w
    model.classifier.in_features = c_in
    resize_tensors(model.classifier, weight=(model.classifier.out_features, c_in),
                   bias=(model.classifier.out_features,))


def original_param_count(widths, num_classes: int, in_channels: int = 3) -> int:
    """The original implementation's `compute_params` for VGG (exact for this family)."""
    total, prev = 0, in_channels
    for w in widths:
        total += prev * w * 9 + w + 2 * w
        prev = w
    return total + prev * num_classes + num_classes
