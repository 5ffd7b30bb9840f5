"""Batching and augmentation on the training device, whole batches at a time.

The dataset lives on the device as uint8; a batch is gathered, randomly
cropped from a zero-padded copy, flipped (and rotated, for TinyImageNet),
then converted to normalised floats.  No per-sample Python, no worker
processes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def channel_stats(x: torch.Tensor, chunk: int = 8192) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std (in 0-255 units) of a uint8 NCHW tensor."""
    c = x.shape[1]
    s = torch.zeros(c, dtype=torch.float64)
    s2 = torch.zeros(c, dtype=torch.float64)
    n = 0
    for i in range(0, len(x), chunk):
        b = x[i:i + chunk].to(torch.float64)
        s += b.sum(dim=(0, 2, 3)).cpu()
        s2 += (b * b).sum(dim=(0, 2, 3)).cpu()
        n += b.numel() // c
    mean = s / max(n, 1)
    std = (s2 / max(n, 1) - mean * mean).clamp_min(1e-6).sqrt()
    return mean.float(), std.float()


def random_crop(x: torch.Tensor, padding: int, gen: torch.Generator) -> torch.Tensor:
    """Each image cropped back to its size at a random offset from a zero-padded copy."""
    if padding <= 0:
        return x
    b, c, h, w = x.shape
    xp = F.pad(x, (padding, padding, padding, padding))
    dy = torch.randint(0, 2 * padding + 1, (b,), generator=gen, device=gen.device).to(x.device)
    dx = torch.randint(0, 2 * padding + 1, (b,), generator=gen, device=gen.device).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, :, None]  # b,h,1
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, :]  # b,1,w
    batch = torch.arange(b, device=x.device)[:, None, None]
    return xp.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)  # b,c,h,w


def random_crop_flip(x: torch.Tensor, padding: int, gen: torch.Generator) -> torch.Tensor:
    """random_crop then random_flip in one gather (the same random draws, in the same order, so the same images)."""
    b, c, h, w = x.shape
    if padding <= 0:
        return random_flip(x, gen)
    xp = F.pad(x, (padding, padding, padding, padding))
    dy = torch.randint(0, 2 * padding + 1, (b,), generator=gen, device=gen.device).to(x.device)
    dx = torch.randint(0, 2 * padding + 1, (b,), generator=gen, device=gen.device).to(x.device)
    flip = (torch.rand(b, generator=gen, device=gen.device) < 0.5).to(x.device)
    ar_h, ar_w = torch.arange(h, device=x.device), torch.arange(w, device=x.device)
    rows = (dy[:, None] + ar_h)[:, :, None]  # b,h,1
    cols = dx[:, None] + torch.where(flip[:, None], w - 1 - ar_w, ar_w)  # a flipped image reads its columns backwards
    batch = torch.arange(b, device=x.device)[:, None, None]
    return xp.permute(0, 2, 3, 1)[batch, rows, cols[:, None, :]].permute(0, 3, 1, 2)


def random_flip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    flip = (torch.rand(len(x), generator=gen, device=gen.device) < 0.5).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def random_rotate(x: torch.Tensor, degrees: float, gen: torch.Generator) -> torch.Tensor:
    """Rotate float images by a uniform random angle in [-degrees, degrees], zero fill, each output pixel the
    nearest input pixel's value (as torchvision's RandomRotation on PIL images, the original's TinyImageNet
    augmentation: no interpolated values)."""
    angle = (torch.rand(len(x), generator=gen, device=gen.device).to(x.device) * 2 - 1) * math.radians(degrees)
    cos, sin = angle.cos(), angle.sin()
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)


class DeviceBatches:
    """A split's images on the training device, served as normalised float batches."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
                 device: torch.device, channels_last: bool = False, dtype: torch.dtype = torch.float32):
        self.x = x.to(device)
        self.y = y.to(device)
        self.device = device
        self.mean = (mean.to(device) / 255.0).view(1, -1, 1, 1)
        self.std = (std.to(device) / 255.0).view(1, -1, 1, 1)
        # (x / 255 - mean) / std as one multiply-add on the uint8 pixels
        self.scale = (1.0 / (255.0 * self.std)).to(dtype)
        self.shift = (-self.mean / self.std).to(dtype)
        self.channels_last = channels_last
        self.dtype = dtype

    def __len__(self) -> int:
        return len(self.y)

    def _finish(self, xb: torch.Tensor, rotate: float = 0.0, gen: torch.Generator | None = None) -> torch.Tensor:
        if rotate:  # rotation fills with zeros in pixel space, before normalising
            out = random_rotate(xb.to(self.dtype) / 255.0, rotate, gen)
            out = (out - self.mean.to(self.dtype)) / self.std.to(self.dtype)
        else:
            out = torch.addcmul(self.shift, xb.to(self.dtype), self.scale)
        # Batch crops come out channels-last; the model gets the layout it was put in (train.cpu_channels_last).
        if self.channels_last:
            return out.contiguous(memory_format=torch.channels_last)
        # With one channel, channels-last strides also count as contiguous, and `contiguous()` keeps them;
        # convolutions would then pick channels-last for the whole network.  Re-view with NCHW strides.
        return out.contiguous().view(-1).view(out.shape)

    def train_batches(self, batch_size: int, gen: torch.Generator, crop_padding: int = 4,
                      rotate: float = 0.0, augment: bool = True, drop_last: bool = False):
        """One epoch of shuffled, augmented batches."""
        order = torch.randperm(len(self), generator=gen, device=gen.device).to(self.device)
        stop = len(self) - (len(self) % batch_size if drop_last else 0)
        for i in range(0, stop, batch_size):
            idx = order[i:i + batch_size]
            xb = self.x[idx]
            if augment:
                xb = random_crop_flip(xb, crop_padding, gen)
            yield self._finish(xb, rotate if augment else 0.0, gen), self.y[idx]

    def eval_batches(self, batch_size: int):
        for i in range(0, len(self), batch_size):
            yield self._finish(self.x[i:i + batch_size]), self.y[i:i + batch_size]
