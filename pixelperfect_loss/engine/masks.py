"""Spatial strength masks: where, and how strongly, a distortion is applied.

:func:`random_masks` draws one (N, 1, H, W) map in [0, 1] per sample from several
families, so that a model trained on them learns *where* as well as *what*.
Masks reach exact 0 and exact 1 (soft edges are squashed at their tails), so
that pixels outside a mask are untouched. Every family is smooth, so masks are rendered at up to
1/4 of the resolution (a side of at least 32 cells) and upsampled bilinearly before the squash,
at about a sixteenth of the cost of rendering them at full resolution.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

#: Mask families and their sampling probabilities.
FAMILIES: tuple[str, ...] = ("full", "field", "blobs", "planes")
_PROBS = (0.3, 0.25, 0.25, 0.2)


def _rand(shape: tuple[int, ...], generator: torch.Generator | None) -> Tensor:
    """Uniform float64 draws from ``generator`` (on its device), returned on the CPU where masks are drawn."""
    dev = generator.device if generator is not None else torch.device("cpu")
    return torch.rand(shape, generator=generator, device=dev, dtype=torch.float64).cpu()


def _squash(m: Tensor) -> Tensor:
    return ((m - 0.05) / 0.9).clamp(0, 1)


def _render(field: Callable[..., Tensor], n: int, h: int, w: int, generator: torch.Generator | None,
            keep: Tensor | None, device: torch.device | str | None = None) -> Tensor:
    """Render ``field`` (an unsquashed smooth map) at reduced size on ``device`` (its random draws
    come from ``generator`` on the CPU), upsample it to (h, w), squash it."""
    f = max(1, min(4, min(h, w) // 32))
    m = field(n, -(-h // f), -(-w // f), generator, _keep(keep, n), torch.device(device or "cpu"))
    if f > 1:
        m = F.interpolate(m, size=(h, w), mode="bilinear", align_corners=False)
    return _squash(m)


def _coords(n: int, h: int, w: int, device: torch.device) -> tuple[Tensor, Tensor]:
    s = max(h, w)
    yy = (torch.arange(h, dtype=torch.float32, device=device) + 0.5 - h / 2) / s
    xx = (torch.arange(w, dtype=torch.float32, device=device) + 0.5 - w / 2) / s
    return yy.view(1, 1, h, 1).expand(n, 1, h, w), xx.view(1, 1, 1, w).expand(n, 1, h, w)


def _keep(keep: Tensor | None, n: int) -> Tensor:
    return torch.ones(n, dtype=torch.bool) if keep is None else keep


def field_masks(n: int, h: int, w: int, generator: torch.Generator | None = None,
                keep: Tensor | None = None, device: torch.device | str | None = None) -> Tensor:
    """Smooth random fields: coarse uniform noise upsampled bicubically, then a soft threshold.

    Example:
        >>> m = field_masks(2, 32, 48, torch.Generator().manual_seed(0))
        >>> m.shape, bool(m.min() >= 0), bool(m.max() <= 1)
        (torch.Size([2, 1, 32, 48]), True, True)
    """
    return _render(_field, n, h, w, generator, keep, device)


def _field(n: int, h: int, w: int, generator: torch.Generator | None, keep: Tensor, device: torch.device) -> Tensor:
    cells = 2 + int(_rand((1,), generator).item() * 5)
    coarse = _rand((n, 1, cells, cells), generator)[keep].float().to(device)
    f = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)
    thr = 0.25 + 0.5 * _rand((n, 1, 1, 1), generator)[keep].float().to(device)
    sharp = 3.0 + 12.0 * _rand((n, 1, 1, 1), generator)[keep].float().to(device)
    return torch.sigmoid((f - thr) * sharp)


def blob_masks(n: int, h: int, w: int, generator: torch.Generator | None = None,
               keep: Tensor | None = None, device: torch.device | str | None = None) -> Tensor:
    """One to three soft ellipses at random places, sizes and orientations.

    Example:
        >>> blob_masks(1, 32, 32, torch.Generator().manual_seed(0)).shape
        torch.Size([1, 1, 32, 32])
    """
    return _render(_blobs, n, h, w, generator, keep, device)


def _blobs(n: int, h: int, w: int, generator: torch.Generator | None, keep: Tensor, device: torch.device) -> Tensor:
    k = int(keep.sum())
    yy, xx = _coords(k, h, w, device)
    count = (1 + (_rand((n, 1, 1, 1), generator)[keep] * 3).floor()).to(device)
    # The three candidate ellipses at once (the same draws as three calls one after the other): their shapes
    # by plain arithmetic on (3, k, 1, h, w); cos, sin and sigmoid still one ellipse at a time, so that every
    # value is computed on a tensor of the same size as before (the vectorised and scalar code paths of
    # those functions may differ in the last bit).
    p = _rand((3, 6, n, 1, 1, 1), generator)[:, :, keep].float().to(device)
    cy, cx = (p[:, 0] - 0.5) * h / max(h, w), (p[:, 1] - 0.5) * w / max(h, w)
    ay, ax = 0.1 + 0.35 * p[:, 2], 0.1 + 0.35 * p[:, 3]
    th = p[:, 4] * math.pi
    cos, sin = torch.stack([torch.cos(a) for a in th]), torch.stack([torch.sin(a) for a in th])
    dy, dx = yy - cy, xx - cx
    u = dx * cos + dy * sin
    v = -dx * sin + dy * cos
    r = torch.sqrt((u / ax) ** 2 + (v / ay) ** 2)
    z = (1.0 - r) * (4.0 + 12.0 * p[:, 5])
    out = torch.zeros(k, 1, h, w, device=device)
    for i in range(3):
        out = torch.where(count > i, torch.maximum(out, torch.sigmoid(z[i])), out)
    return out


def plane_masks(n: int, h: int, w: int, generator: torch.Generator | None = None,
                keep: Tensor | None = None, device: torch.device | str | None = None) -> Tensor:
    """Soft half-planes (a ramp across the image) and soft bands, at random angles.

    Example:
        >>> plane_masks(1, 32, 32, torch.Generator().manual_seed(0)).shape
        torch.Size([1, 1, 32, 32])
    """
    return _render(_planes, n, h, w, generator, keep, device)


def _planes(n: int, h: int, w: int, generator: torch.Generator | None, keep: Tensor, device: torch.device) -> Tensor:
    yy, xx = _coords(int(keep.sum()), h, w, device)
    p = _rand((5, n, 1, 1, 1), generator)[:, keep].float().to(device)
    th = p[0] * 2 * math.pi
    d = xx * torch.cos(th) + yy * torch.sin(th) - (p[1] - 0.5) * 0.6
    sharp = 4.0 + 30.0 * p[2]
    half = torch.sigmoid(d * sharp)
    width = 0.05 + 0.25 * p[3]
    band = torch.sigmoid((width - d.abs()) * sharp)
    return torch.where(p[4] < 0.5, half, band)


def random_masks(n: int, h: int, w: int, generator: torch.Generator | None = None,
                 *, keep: Tensor | None = None, device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.float32) -> Tensor:
    """One strength mask per sample, (N, 1, H, W) in [0, 1], its family drawn at random.

    With ``keep`` (a boolean (N,) tensor) only those masks are rendered (the others are zero);
    the random draws, and so every rendered mask, are the same as without it.

    Example:
        >>> m = random_masks(4, 16, 16, torch.Generator().manual_seed(0))
        >>> m.shape, m.dtype
        (torch.Size([4, 1, 16, 16]), torch.float32)
    """
    keep = _keep(keep, n).cpu()
    cum = torch.tensor(_PROBS, dtype=torch.float64).cumsum(0)
    family = torch.searchsorted(cum[:-1], _rand((n,), generator), right=True)
    dev = torch.device(device or "cpu")
    out = torch.zeros(n, 1, h, w, device=dev)  # rendered where they are used (random draws: CPU)
    out.index_fill_(0, (keep & (family == 0)).nonzero().flatten().to(dev), 1.0)  # index_*_: faster than out[mask] = ...
    for i, make in enumerate((field_masks, blob_masks, plane_masks), start=1):
        idx = (family == i).nonzero().flatten()
        if len(idx):
            kept = keep[idx]
            out.index_copy_(0, idx[kept].to(dev), make(len(idx), h, w, generator, keep=kept, device=dev))
    return out.to(dtype=dtype)
