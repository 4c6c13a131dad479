"""The relational scorer: one score per (reference, image) pair, higher is better.

Features, each non-negative and exactly zero for identical inputs:

- from the predictor's maps: the mean positive and mean negative part of each channel (16);
- a generic difference signal, for distortions outside the eight channels: at four scales of a
  luma / chroma pyramid, the mean (smooth) absolute difference of luma, of chroma, of luma
  gradients, and of local contrast (16).

The score is ``-sum_j v_j log(1 + sum_k W_jk phi_k)`` with positive ``v`` and ``W``: exactly 0 for
identical images, below 0 for any other image (the luma and chroma differences are > 0 whenever
the images differ), monotone in every feature and differentiable everywhere.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

N_GENERIC = 16
N_MAP_FEATURES = 16


def _opponent(x: Tensor) -> tuple[Tensor, Tensor]:
    r, g, b = x.unbind(1)
    y = 0.299 * r + 0.587 * g + 0.114 * b
    return y.unsqueeze(1), torch.stack([r - g, 0.5 * (r + g) - b], 1)


def _sabs(x: Tensor, eps: float = 1e-3) -> Tensor:
    """Smooth absolute value: sqrt(x^2 + eps^2) - eps, exactly 0 at 0, differentiable everywhere."""
    return torch.sqrt(x * x + eps * eps) - eps


def _local_contrast(y: Tensor) -> Tensor:
    mu = F.avg_pool2d(y, 3, 1, 1, count_include_pad=False)
    var = (F.avg_pool2d(y * y, 3, 1, 1, count_include_pad=False) - mu * mu).clamp_min(0)
    return torch.sqrt(var + 1e-6)  # eps: finite gradient on flat regions


def generic_features(reference: Tensor, image: Tensor, levels: int = 4) -> Tensor:
    """(N, 16) multi-scale difference features; exactly zero when ``image == reference``.

    Example:
        >>> x = torch.rand(2, 3, 32, 32)
        >>> generic_features(x, x).abs().max().item()
        0.0
    """
    if reference.dtype in (torch.float16, torch.bfloat16):  # sqrt(0 + eps^2) - eps is not 0 in 16 bits
        return generic_features(reference.float(), image.float(), levels).to(reference.dtype)
    yr, cr = _opponent(reference)
    yi, ci = _opponent(image)
    feats = []
    for level in range(levels):
        if level:
            yr, yi, cr, ci = (F.avg_pool2d(t, 2, ceil_mode=True) for t in (yr, yi, cr, ci))
        dy = yi - yr
        zero = dy.new_zeros(len(dy))
        gx = _sabs(dy[..., :, 1:] - dy[..., :, :-1]).mean((1, 2, 3)) if dy.shape[-1] > 1 else zero
        gy = _sabs(dy[..., 1:, :] - dy[..., :-1, :]).mean((1, 2, 3)) if dy.shape[-2] > 1 else zero
        feats += [_sabs(dy).mean((1, 2, 3)), _sabs(ci - cr).mean((1, 2, 3)), gx + gy,
                  _sabs(_local_contrast(yi) - _local_contrast(yr)).mean((1, 2, 3))]
    return torch.stack(feats, 1)


def map_features(maps: Tensor) -> Tensor:
    """(N, 16): mean positive part then mean negative part of each channel's map.

    Example:
        >>> map_features(torch.zeros(1, 8, 4, 4)).shape
        torch.Size([1, 16])
    """
    # relu, not clamp_min: a zero slope at 0, so that the score's gradient vanishes at image == reference
    return torch.cat([torch.relu(maps).mean((2, 3)), torch.relu(-maps).mean((2, 3))], 1)


def scorer_features(maps: Tensor, reference: Tensor, image: Tensor) -> Tensor:
    """(N, 32) scorer input: :func:`map_features` of the predictor's maps, then :func:`generic_features`.

    Example:
        >>> x = torch.rand(1, 3, 32, 32)
        >>> scorer_features(torch.zeros(1, 8, 8, 8), x, x).abs().max().item()
        0.0
    """
    generic = generic_features(reference.to(maps.dtype), image.to(maps.dtype))
    return torch.cat([map_features(maps), generic], 1)


class RelationalScorer(nn.Module):
    """Score from (N, 32) non-negative features: 0 at zero features, negative otherwise.

    Example:
        >>> s = RelationalScorer()
        >>> s(torch.zeros(2, 32)).tolist(), bool((s(torch.rand(2, 32)) < 0).all())
        ([0.0, 0.0], True)
    """

    def __init__(self, hidden: int = 16) -> None:
        super().__init__()
        n = N_MAP_FEATURES + N_GENERIC
        self.scale = nn.Parameter(torch.zeros(n))          # per-feature log scale
        self.w = nn.Parameter(torch.randn(hidden, n, generator=torch.Generator().manual_seed(0)) * 0.5 - 3.0)
        self.v = nn.Parameter(torch.zeros(hidden))

    def forward(self, features: Tensor) -> Tensor:
        """(N,) scores of (N, 32) features: 0 where all are 0, negative otherwise."""
        phi = features * torch.exp(self.scale) * 10.0
        h = torch.log1p(phi @ F.softplus(self.w).t())
        return 0.0 - (h @ F.softplus(self.v))  # 0.0 - x: an exact +0.0 (not -0.0) for identical images

    def contributions(self, features: Tensor) -> Tensor:
        """(N, 32) additive share of each feature in the score (they sum to the score).

        Example:
            >>> s, f = RelationalScorer(), torch.rand(2, 32)
            >>> torch.allclose(s.contributions(f).sum(1), s(f), atol=1e-5)
            True
        """
        phi = features * torch.exp(self.scale) * 10.0
        w = F.softplus(self.w)
        pre = phi @ w.t()
        h = torch.log1p(pre)
        share = torch.where(pre[..., None] > 0, phi[:, None, :] * w[None] / pre[..., None].clamp_min(1e-30), 0.0)
        return -(share * (h * F.softplus(self.v))[..., None]).sum(1)
