"""Cheap fixed (parameter-free) per-image features that make each channel easy to see.

All are computed at 1/4 resolution from the full-resolution image:
colour means in an opponent space, log band-pass energies of luma at three scales and
of chroma at the finest (blur, sharpening, noise), and the 8x8 block-grid response of
luma (JPEG). The network sees the difference of these features between the two images,
so a log energy becomes a log-ratio.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

#: Number of feature channels returned by :func:`fixed_features`.
N_FIXED = 9
_EPS = 1e-5


def _opponent(x: Tensor) -> Tensor:
    r, g, b = x.unbind(1)
    y = 0.299 * r + 0.587 * g + 0.114 * b
    return torch.stack([y, r - g, 0.5 * (r + g) - b], dim=1)


def _up(x: Tensor, size: tuple[int, int]) -> Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def _band(x: Tensor) -> tuple[Tensor, Tensor]:
    """Band-pass energy of ``x`` and its 2x down-sampled low-pass."""
    low = F.avg_pool2d(x, 2)
    return (x - _up(low, x.shape[-2:])) ** 2, low


def _log(e: Tensor) -> Tensor:
    return 0.25 * torch.log(e + _EPS)


def fixed_features(x: Tensor) -> Tensor:
    """(N, 3, H, W) with H, W multiples of 16 -> (N, N_FIXED, H/4, W/4).

    Example:
        >>> fixed_features(torch.rand(2, 3, 32, 32)).shape
        torch.Size([2, 9, 8, 8])
    """
    opp = _opponent(x)
    y = opp[:, :1]
    e0, y1 = _band(y)
    e1, y2 = _band(y1)
    e2, _ = _band(y2)
    c0, _ = _band(opp[:, 1:])
    energies = torch.cat([
        F.avg_pool2d(e0, 4), F.avg_pool2d(e1, 2), e2, F.avg_pool2d(c0.sum(1, keepdim=True), 4),
    ], dim=1)
    # JPEG: gradients across 8x8 block boundaries versus inside blocks, per block.
    dx = F.pad((y[..., :, 1:] - y[..., :, :-1]).abs(), (0, 1))
    dy = F.pad((y[..., 1:, :] - y[..., :-1, :]).abs(), (0, 0, 0, 1))
    col = (torch.arange(x.shape[-1], device=x.device) % 8 == 7).to(x.dtype)
    row = (torch.arange(x.shape[-2], device=x.device) % 8 == 7).to(x.dtype).view(-1, 1)
    grid = torch.cat([
        F.avg_pool2d(dx * col, 8) * 8, F.avg_pool2d(dx * (1 - col), 8) * (8 / 7),
        F.avg_pool2d(dy * row, 8) * 8, F.avg_pool2d(dy * (1 - row), 8) * (8 / 7),
    ], dim=1)
    grid = F.interpolate(grid, scale_factor=2.0, mode="nearest")
    boundary = _log(grid[:, 0:1] ** 2 + grid[:, 2:3] ** 2)
    inside = _log(grid[:, 1:2] ** 2 + grid[:, 3:4] ** 2)
    return torch.cat([F.avg_pool2d(opp, 4), _log(energies), boundary, boundary - inside], dim=1)
