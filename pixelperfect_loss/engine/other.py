"""Operators outside the eight channels ("other"): the scorer must see its score fall for
distortions the channel bank does not name. Same signature as :mod:`.operators`:
``op(x, t, generator=None)``, ``t`` in [0, 1] per sample, ``t = 0`` the exact identity.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .operators import _identity_where_zero, _operator, _uniform, _v

__all__ = ["fog", "quantise", "pixelate", "warp", "OTHER_OPERATORS"]


def _smooth_field(n: int, h: int, w: int, cells: int, generator: torch.Generator | None, like: Tensor) -> Tensor:
    dev = generator.device if generator is not None else torch.device("cpu")
    coarse = torch.rand(n, 1, cells, cells, generator=generator, device=dev, dtype=torch.float64)
    return F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False).to(like.device, like.dtype)


@_operator(signed=False)
def fog(x: Tensor, t: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Uneven haze: blend towards a bright grey airlight with a smooth density up to 0.75 t.

    Example:
        >>> x = torch.rand(1, 3, 16, 16)
        >>> bool((fog(x, torch.zeros(1)) == x).all())
        True
    """
    n, _, h, w = x.shape
    density = 0.75 * _v(t) * (0.5 + 0.5 * _smooth_field(n, h, w, 3, generator, x)).clamp(0, 1)
    air = _v(_uniform(n, 0.75, 0.95, generator, x))
    return _identity_where_zero(x, x * (1 - density) + air * density, t)


@_operator(signed=False)
def quantise(x: Tensor, t: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Colour quantisation to 2^(8 - 6 t) levels per channel (4 levels at t = 1), no dithering.

    Example:
        >>> quantise(torch.rand(1, 3, 8, 8), torch.ones(1)).unique().numel() <= 4
        True
    """
    levels = _v(torch.round(torch.exp2(8.0 - 6.0 * t))) - 1  # whole levels: outputs stay in [0, 1]
    return _identity_where_zero(x, torch.round(x * levels) / levels, t)


@_operator(signed=False)
def pixelate(x: Tensor, t: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Blocky down-sampling to square blocks of ``1 + ceil(7 t)`` pixels (2 to 8), from the top-left
    corner: each block takes its mean (area) or, at random, its centre pixel (point sampling, as a
    nearest-neighbour resize does), then is repeated over the block.

    Example:
        >>> y = pixelate(torch.rand(1, 3, 16, 16), torch.ones(1))
        >>> y.shape, bool((y[..., :8, :8] == y[..., :1, :1]).all())
        (torch.Size([1, 3, 16, 16]), True)
    """
    h, w = x.shape[-2:]
    point = _v(_uniform(len(x), 0.0, 1.0, generator, x)).flatten() < 0.5
    out = []
    for xi, ti, pi in zip(x, t.tolist(), point.tolist()):
        b = 1 + math.ceil(7.0 * ti - 1e-9)
        if b <= 1:
            out.append(xi[None])
            continue
        if pi:  # the centre pixel of each block (the last, partial blocks: their last pixel at most)
            rows = (torch.arange(-(-h // b), device=x.device) * b + b // 2).clamp(max=h - 1)
            cols = (torch.arange(-(-w // b), device=x.device) * b + b // 2).clamp(max=w - 1)
            small = xi[None][..., rows[:, None], cols]
        else:
            small = F.avg_pool2d(xi[None], b, ceil_mode=True)
        big = small.repeat_interleave(b, -2).repeat_interleave(b, -1)
        out.append(big[..., :h, :w])
    return _identity_where_zero(x, torch.cat(out), t)


@_operator(signed=False)
def warp(x: Tensor, t: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Smooth geometric warp: a random low-frequency displacement field of up to 4 t pixels.

    Example:
        >>> x = torch.rand(1, 3, 16, 16)
        >>> bool((warp(x, torch.zeros(1)) == x).all())
        True
    """
    n, _, h, w = x.shape
    field = torch.cat([_smooth_field(n, h, w, 4, generator, x) for _ in range(2)], 1) * 2 - 1
    scale = torch.tensor([2.0 / w, 2.0 / h], device=x.device, dtype=x.dtype).view(1, 2, 1, 1)
    disp = (4.0 * _v(t) * field * scale).permute(0, 2, 3, 1)
    ys = torch.linspace(-1 + 1 / h, 1 - 1 / h, h, device=x.device, dtype=x.dtype)
    xs = torch.linspace(-1 + 1 / w, 1 - 1 / w, w, device=x.device, dtype=x.dtype)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).expand(n, h, w, 2)
    out = F.grid_sample(x, grid + disp, mode="bilinear", padding_mode="reflection", align_corners=False)
    return _identity_where_zero(x, out.clamp(0, 1), t)


OTHER_OPERATORS = (fog, quantise, pixelate, warp)
