"""MobileNetV2 for small images, as in the original NeuralScale code.

Widths (19): the stem convolution, the output of each of the 17 inverted
residual blocks, and the final 1x1 convolution.  A block's expansion width is
tied to its input (x1 for the first block, x6 otherwise) and is not searched.
Every convolution has a bias.  A block that strides or changes width gets a 1x1
convolution + BN shortcut (`convcut`: every block does), and the gate sits after
the residual sum, so it gates the whole stream the next block sees.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from .gate import Gate

BASE_WIDTHS = (32, 16, 24, 24, 32, 32, 32, 64, 64, 64, 64, 96, 96, 96, 160, 160, 160, 320, 1280)
# (blocks, expansion, stride) per stage; stage 5's stride is 2 at 64x64 and above.
STAGES = ((1, 1, 1), (2, 6, 2), (3, 6, 2), (4, 6, 2), (3, 6, 1), (3, 6, 2), (1, 6, 1))
LAYER_NAMES = ("stem",) + tuple(f"block{i + 1}" for i in range(17)) + ("conv_last",)


class InvertedResidual(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, t: int, gate: int, convcut: bool):
        super().__init__()
        hidden = c_in * t
        self.residual = nn.Sequential(
            nn.Conv2d(c_in, hidden, 1), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, c_out, 1), nn.BatchNorm2d(c_out),
        )
        self.shortcut = None
        if convcut or stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride), nn.BatchNorm2d(c_out))
        self.gate = Gate(gate, c_out)

    def forward(self, x):
        out = self.residual(x)
        out = out + (x if self.shortcut is None else self.shortcut(x))
        return self.gate(out)


class MobileNetV2(nn.Module):
    def __init__(self, widths: list[int], num_classes: int, in_channels: int = 3,
                 large_input: bool = False, convcut: bool = False):
        super().__init__()
        self.pre = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, padding=1), nn.BatchNorm2d(widths[0]))
        self.gate_pre = Gate(0, widths[0], self.pre[1])
        blocks, i = [], 1
        for s, (n, t, stride) in enumerate(STAGES):
            if s == 4 and large_input:
                stride = 2
            for j in range(n):
                blocks.append(InvertedResidual(widths[i - 1], widths[i], stride if j == 0 else 1, t, i, convcut))
                i += 1
        self.blocks = nn.Sequential(*blocks)
        self.conv1 = nn.Sequential(nn.Conv2d(widths[17], widths[18], 1), nn.BatchNorm2d(widths[18]))
        self.gate_conv1 = Gate(18, widths[18], self.conv1[1])
        self.conv2 = nn.Conv2d(widths[18], num_classes, 1)

    def forward(self, x):
        x = F.relu6(self.gate_pre(self.pre(x)))
        x = self.blocks(x)
        x = F.relu6(self.gate_conv1(self.conv1(x)))
        return self.conv2(F.adaptive_avg_pool2d(x, 1)).flatten(1)


def costs(widths, num_classes: int, in_channels: int, resolution: int, large_input: bool = False,
          convcut: bool = False) -> tuple[int, int]:
    """(parameters, MACs per image) of `MobileNetV2(widths, ...)` on square images of this side, by formula: what a
    built model counts (accounting.py), without building one. Every convolution has a bias; a 3x3 convolution
    (padding 1) or a 1x1 one at stride s leaves floor((side - 1) / s) + 1 positions a side; the classifier (a 1x1
    convolution) sees one position (the average pool)."""
    side = resolution
    params = 9 * in_channels * widths[0] + 3 * widths[0]  # the stem: 3x3 convolution with bias, batch norm
    macs = side * side * 9 * in_channels * widths[0]
    i = 1
    for s, (n, t, stride) in enumerate(STAGES):
        if s == 4 and large_input:
            stride = 2
        for j in range(n):
            c_in, c_out, st = widths[i - 1], widths[i], stride if j == 0 else 1
            hidden = c_in * t
            out_side = (side - 1) // st + 1
            params += c_in * hidden + 3 * hidden  # expansion (1x1 with bias) and its batch norm
            params += 9 * hidden + 3 * hidden  # depthwise 3x3 with bias and its batch norm
            params += hidden * c_out + 3 * c_out  # projection (1x1 with bias) and its batch norm
            macs += side * side * c_in * hidden + out_side * out_side * (9 * hidden + hidden * c_out)
            if convcut or st != 1 or c_in != c_out:
                params += c_in * c_out + 3 * c_out  # the shortcut's 1x1 convolution with bias and batch norm
                macs += out_side * out_side * c_in * c_out
            side = out_side
            i += 1
    params += widths[17] * widths[18] + 3 * widths[18] + widths[18] * num_classes + num_classes
    return params, macs + side * side * widths[17] * widths[18] + widths[18] * num_classes


def original_param_count(widths, num_classes: int, in_channels: int = 3) -> int:
    """The original implementation's `compute_params` for MobileNetV2, bugs included.

    It counts the 3x3 stem as if it were 1x1 and adds a shortcut only where
    widths differ.  The original fitted its laws with this count.
    """
    expand = [1] + [6] * 16
    total = in_channels * widths[0] + widths[0] + 2 * widths[0]
    prev = widths[0]
    for i in range(1, 18):
        w = widths[i]
        if prev != w:
            total += prev * w + w + 2 * w
        mid = prev * expand[i - 1]
        total += prev * mid + 3 * mid + mid * 9 + 3 * mid + mid * w + 3 * w
        prev = w
    total += prev * widths[18] + 3 * widths[18]
    return total + widths[18] * num_classes + num_classes
