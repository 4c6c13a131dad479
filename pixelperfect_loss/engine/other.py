"""Operators outside the eight channels ("other"): the scorer must see its score fall for
distortions the channel bank does not name. Same signature as :mod:`.operators`:
``op(x, t, generator=None)``, ``t`` in [0, 1] per sample, ``t = 0`` the exact identity.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .operators import _identity_where_zero, _uniform, _v

__all__ = ["fog", "quantise", "pixelate", "warp", "OTHER_OPERATORS"]


def _smooth_field(n: int, h: int, w: int, cells: int, generator: torch.Generator | None, like: Tensor) -> Tensor:
    dev = generator.device if generator is not None else torch.device("cpu")
    coarse = torch.rand(n, 1, cells, cells, generator=generator, device=dev, dtype=torch.float64)
    return F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False).to(like.device, like.dtype)


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


def quantise(x: Tensor, t: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Colour quantisation to 2^(8 - 6 t) levels per channel (4 levels at t = 1), no dithering.

    Example:
        >>> quantise(torch.rand(1, 3, 8, 8), torch.ones(1)).unique().numel() <= 4
        True
    """
    levels = _v(torch.round(torch.exp2(8.0 - 6.0 * t))) - 1  # whole levels: outputs stay in [0, 1]
    return _identity_where_zero(x, torch.round(x * levels) / levels, t)


def pixelate(x: Tensor, t: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Blocky down-sampling: area average over blocks of 1 + 7 t pixels, nearest up-sampling.

    Example:
        >>> pixelate(torch.rand(1, 3, 16, 16), torch.ones(1)).shape
        torch.Size([1, 3, 16, 16])
    """
    h, w = x.shape[-2:]
    out = []
    for xi, ti in zip(x, t.tolist()):
        b = 1.0 + 7.0 * ti
        size = (max(1, round(h / b)), max(1, round(w / b)))
        out.append(F.interpolate(F.interpolate(xi[None], size=size, mode="area"), size=(h, w), mode="nearest"))
    return _identity_where_zero(x, torch.cat(out), t)


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
