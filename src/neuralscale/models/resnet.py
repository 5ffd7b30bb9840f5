"""Pre-activation ResNet18, as in the original NeuralScale code.

Widths (17): the stem convolution, then the two convolutions of each of the
eight basic blocks.  A block's input is gated after its first BN (that gate
belongs to the layer that produced the input: the stem or the previous block's
second convolution); its first convolution is gated after the second BN; the
last block's output is gated after the final BN.  A block whose input and
output widths differ, or that strides, gets a 1x1 projection shortcut
(`convcut`: every block does).  Like the original, the final BN feeds the
average pool without a ReLU.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from .gate import Gate

BASE_WIDTHS = (64,) + (64,) * 4 + (128,) * 4 + (256,) * 4 + (512,) * 4
LAYER_NAMES = ("stem",) + tuple(f"block{b + 1}.conv{c + 1}" for b in range(8) for c in range(2))


class PreActBlock(nn.Module):
    def __init__(self, c_in: int, c_mid: int, c_out: int, stride: int, in_gate: int, convcut: bool):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.gate1 = Gate(in_gate, c_in, self.bn1)
        self.conv1 = nn.Conv2d(c_in, c_mid, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_mid)
        self.gate2 = Gate(in_gate + 1, c_mid, self.bn2)
        self.conv2 = nn.Conv2d(c_mid, c_out, 3, 1, 1, bias=False)
        self.shortcut = None
        if convcut or stride != 1 or c_in != c_out:
            self.shortcut = nn.Conv2d(c_in, c_out, 1, stride, bias=False)

    def forward(self, x):
        out = F.relu(self.gate1(self.bn1(x)))
        shortcut = x if self.shortcut is None else self.shortcut(out)
        out = self.conv1(out)
        out = self.conv2(F.relu(self.gate2(self.bn2(out))))
        return out + shortcut


class PreActResNet18(nn.Module):
    def __init__(self, widths: list[int], num_classes: int, in_channels: int = 3,
                 first_stride: int = 1, convcut: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        blocks = []
        for b in range(8):
            stride = (first_stride if b == 0 else 2) if b % 2 == 0 else 1
            c_in, c_mid, c_out = widths[2 * b], widths[2 * b + 1], widths[2 * b + 2]
            blocks.append(PreActBlock(c_in, c_mid, c_out, stride, 2 * b, convcut))
        self.blocks = nn.Sequential(*blocks)
        self.bn_out = nn.BatchNorm2d(widths[-1])
        self.gate_out = Gate(16, widths[-1], self.bn_out)
        self.linear = nn.Linear(widths[-1], num_classes)
        for m in self.modules():  # the original's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.zeros_(m.bias)

    def forward(self, x):
        out = self.gate_out(self.bn_out(self.blocks(self.conv1(x))))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


def costs(widths, num_classes: int, in_channels: int, resolution: int, first_stride: int = 1,
          convcut: bool = False) -> tuple[int, int]:
    """(parameters, MACs per image) of `PreActResNet18(widths, ...)` on square images of this side, by formula:
    what a built model counts (accounting.py), without building one. A 3x3 convolution with padding 1 and a 1x1
    projection without padding, at stride s, both leave floor((side - 1) / s) + 1 positions a side."""
    side = resolution
    params = 9 * in_channels * widths[0]
    macs = side * side * 9 * in_channels * widths[0]
    for b in range(8):
        stride = (first_stride if b == 0 else 2) if b % 2 == 0 else 1
        c_in, c_mid, c_out = widths[2 * b], widths[2 * b + 1], widths[2 * b + 2]
        side = (side - 1) // stride + 1
        params += 2 * c_in + 9 * c_in * c_mid + 2 * c_mid + 9 * c_mid * c_out  # bn1, conv1, bn2, conv2
        macs += side * side * 9 * (c_in * c_mid + c_mid * c_out)
        if convcut or stride != 1 or c_in != c_out:
            params += c_in * c_out
            macs += side * side * c_in * c_out
    return params + 2 * widths[-1] + widths[-1] * num_classes + num_classes, macs + widths[-1] * num_classes


def original_param_count(widths, num_classes: int, in_channels: int = 3) -> int:
    """The original implementation's `compute_params` for ResNet18.

    It adds a projection only where a block's input and output widths differ,
    ignoring stride, so it undercounts a strided block that keeps its width.
    The original fitted its laws with this count, so it is what reproduces
    them.
    """
    total, prev = 0, in_channels
    for w in widths:
        total += prev * w * 9 + 2 * w
        prev = w
    total += prev * num_classes + num_classes
    for i in range(2, len(widths), 2):
        if widths[i - 2] != widths[i]:
            total += widths[i - 2] * widths[i]
    return total
