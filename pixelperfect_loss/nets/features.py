"""Cheap fixed (parameter-free) per-image features that make each channel easy to see.

All are computed at 1/4 resolution from the 4x4 space-to-depth cells of the image, so that no
full-resolution intermediate is kept for the backward pass:

- opponent colour means (luma, red-green, yellow-blue);
- log mean luma and log mean chroma magnitude: their differences between two images are the log
  brightness ratio and the log saturation ratio (constant under a saturation change, varying with
  hue under a colour cast);
- optionally (``hue=True``) the hue direction, mean opponent colour over mean chroma magnitude:
  unchanged by a saturation change, turned by a colour cast (a ratio the network's linear layers
  could not form themselves);
- log detail energies of luma: within 2x2 cells (finest band), within 4x4 cells, and between
  neighbouring 4x4 cells (coarse band); and of chroma within 4x4 cells (chroma noise);
- the 8x8 block grid (JPEG): log luma step across 8-pixel block edges, and its ratio to the steps
  across the 4-pixel seams inside blocks.

The network sees the difference of these features between the two images, so a log energy
becomes a log-ratio. With ``DistortionPredictor(stats=True)`` (the default since v7) its pair head also
reads whole-image tone statistics of the two images, summed (:func:`global_features`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

#: Number of feature channels returned by :func:`fixed_features`, and the hue direction's, added with ``hue=True``.
N_FIXED = 11
N_HUE = 2
#: Number of per-image global statistics (:func:`global_features`).
N_GLOBAL = 8
_EPS = 1e-5


def _log(e: Tensor) -> Tensor:
    return 0.25 * torch.log(e + _EPS)


def _var(x: Tensor, dim: int) -> Tensor:
    return (x * x).mean(dim) - x.mean(dim) ** 2


def fixed_features(cells: Tensor, hue: bool = False) -> Tensor:
    """(N, 48, h, w) space-to-depth(4) cells of an RGB image (h, w even) -> (N, N_FIXED, h, w), or
    (N, N_FIXED + N_HUE, h, w) with the hue direction (``hue=True``, an input of the shipped network since
    v7).

    Example:
        >>> cells = torch.nn.functional.pixel_unshuffle(torch.rand(2, 3, 32, 32), 4)
        >>> fixed_features(cells).shape, fixed_features(cells, hue=True).shape
        (torch.Size([2, 11, 8, 8]), torch.Size([2, 13, 8, 8]))
    """
    if cells.dtype in (torch.float16, torch.bfloat16):
        # variances as E[x^2] - E[x]^2 come out below -_EPS in 16-bit floats, and their log is NaN
        return fixed_features(cells.float(), hue).to(cells.dtype)
    n, _, h, w = cells.shape
    r, g, b = cells.view(n, 3, 4, 4, h, w).unbind(1)  # each (N, 4, 4, h, w): row, column in the cell
    y = 0.299 * r + 0.587 * g + 0.114 * b
    o1, o2 = r - g, 0.5 * (r + g) - b
    y16 = y.reshape(n, 16, h, w)
    mean_y = y16.mean(1, keepdim=True)
    mean_o = torch.stack([o1.reshape(n, 16, h, w).mean(1), o2.reshape(n, 16, h, w).mean(1)], 1)
    chroma = torch.sqrt(o1 * o1 + o2 * o2 + 1e-4).reshape(n, 16, h, w).mean(1, keepdim=True)  # eps: finite grad
    fine = _var(y.view(n, 2, 2, 2, 2, h, w).permute(0, 1, 3, 2, 4, 5, 6).reshape(n, 4, 4, h, w), 2).mean(1)
    cell = _var(y16, 1)
    coarse = F.avg_pool2d(mean_y * mean_y, 3, 1, 1, count_include_pad=False) - F.avg_pool2d(
        mean_y, 3, 1, 1, count_include_pad=False) ** 2
    chroma_var = _var(o1.reshape(n, 16, h, w), 1) + _var(o2.reshape(n, 16, h, w), 1)
    # steps between neighbouring cells: last column of a cell against the first of the next one
    step_x = F.pad((y[:, :, 0, :, 1:] - y[:, :, 3, :, :-1]).abs().mean(1), (0, 1))
    step_y = F.pad((y[:, 0, :, 1:, :] - y[:, 3, :, :-1, :]).abs().mean(1), (0, 0, 0, 1))
    # cell k's right edge is an 8x8 block edge for odd k and a seam inside a block for even k
    edge = step_x[..., 1::2].repeat_interleave(2, -1) ** 2 + step_y[..., 1::2, :].repeat_interleave(2, -2) ** 2
    seam = step_x[..., 0::2].repeat_interleave(2, -1) ** 2 + step_y[..., 0::2, :].repeat_interleave(2, -2) ** 2
    # clamped: with check_range=False a cell's mean luma may be below -0.01, whose log would be NaN
    tone = torch.cat([torch.log(mean_y.clamp_min(0) + 0.01), torch.log(chroma)], 1) * 0.5
    energies = _log(torch.stack([fine, cell, coarse.squeeze(1), chroma_var, edge], 1))
    feats = [mean_y, mean_o, tone, energies, energies[:, -1:] - _log(seam.unsqueeze(1))]
    if hue:
        feats.append(mean_o / chroma)  # chroma >= 0.01
    return torch.cat(feats, 1)


def global_features(cells: Tensor) -> Tensor:
    """(N, 48, h, w) space-to-depth(4) cells -> (N, N_GLOBAL) whole-image tone statistics of the 4x4 cell means
    (coarse enough that blur and noise barely move them): mean luma, its log, log luma variance, log mean
    chroma, mean opponent colours and their log variances. Their differences between two images separate a
    brightness change (mean and spread move together, or the mean alone) from a contrast change (spread
    alone), and a colour cast from a saturation change, image-wide; but given to the pair head, a difference
    spread a local change over the whole image, so the predictor reads only their sum over the two images,
    a description of the scene (weights/README.md).

    Example:
        >>> global_features(torch.nn.functional.pixel_unshuffle(torch.rand(2, 3, 32, 32), 4)).shape
        torch.Size([2, 8])
    """
    if cells.dtype in (torch.float16, torch.bfloat16):
        return global_features(cells.float()).to(cells.dtype)
    n = cells.shape[0]
    r, g, b = cells.view(n, 3, 16, -1).mean(2).unbind(1)  # each (N, h * w): the cells' mean colours
    y = 0.299 * r + 0.587 * g + 0.114 * b
    o1, o2 = r - g, 0.5 * (r + g) - b
    my = y.mean(1)
    chroma = torch.sqrt(o1 * o1 + o2 * o2 + 1e-4).mean(1)
    return torch.stack([my, torch.log(my.clamp_min(0) + 0.01), _log(_var(y, 1)), torch.log(chroma),
                        o1.mean(1), o2.mean(1), _log(_var(o1, 1)), _log(_var(o2, 1))], 1)
