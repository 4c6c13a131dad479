"""The anti-symmetric distortion predictor P(reference, image) -> signed maps (N, 8, H, W).

Architecture (built for cost: every convolution runs at 1/4 resolution or below)::

    image x --space-to-depth(4)--+--> encoder E (shared, once per image) --> f4, f8, f16
             fixed features ------+                                           (1/4, 1/8, 1/16)
    s = f(ref) + f(img)   (even under swapping)      d = f(img) - f(ref)   (odd)
    g(s, d): light U-Net decoder from 1/16 to 1/4, 8 outputs
    P(ref, img) = g(s, d) - g(s, -d), upsampled x4 (bilinear) and cropped

Swapping the inputs leaves ``s`` unchanged and negates ``d`` (exactly, in floating point), so
``P(a, b) == -P(b, a)`` and ``P(a, a) == 0`` hold for any weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..channels import CHANNELS
from .features import N_FIXED, fixed_features

#: Smallest accepted height and width; inputs are padded internally to a multiple of 16.
MIN_SIZE = 16


def _conv(cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, padding=k // 2), nn.SiLU())


def pad16(x: Tensor) -> Tensor:
    """Pad right and bottom (replicate) to a multiple of 16, keeping the 8x8 JPEG grid aligned."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % 16, (-w) % 16
    return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x


class DistortionPredictor(nn.Module):
    """Signed per-channel distortion maps of ``image`` relative to ``reference``.

    Inputs (N, 3, H, W) in [0, 1] with H, W >= 16; output (N, 8, H, W) in
    :data:`~pixelperfect_loss.channels.CHANNELS` order. This module does not validate its
    inputs: use :func:`pixelperfect_loss.functional.distortion_maps` or the loss for that.

    Example:
        >>> net = DistortionPredictor()
        >>> a, b = torch.rand(1, 3, 40, 24), torch.rand(1, 3, 40, 24)
        >>> bool((net(a, b) == -net(b, a)).all()), net(a, a).abs().max().item()
        (True, 0.0)
    """

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        w1, w2, w3 = width, width * 3 // 2, width * 2
        c0 = 48 + N_FIXED
        self.width = width
        self.stem = nn.Sequential(_conv(c0, w1, 1), _conv(w1, w1))
        self.down8 = nn.Sequential(_conv(w1, w2, 3, 2), _conv(w2, w2))
        self.down16 = nn.Sequential(_conv(w2, w3, 3, 2), _conv(w3, w3))
        # pair decoder g(s, d)
        self.fuse16 = nn.Sequential(_conv(2 * w3, w3), _conv(w3, w3))
        self.context = nn.Linear(w3, w3)
        self.in8 = _conv(2 * w2, w2, 1)
        self.fuse8 = nn.Sequential(_conv(w3 + w2, w2), _conv(w2, w2))
        self.in4 = _conv(2 * (w1 + c0), w1, 1)
        self.fuse4 = nn.Sequential(_conv(w2 + w1, w1), _conv(w1, w1))
        self.out = nn.Conv2d(w1, len(CHANNELS), 1)

    def encode(self, x: Tensor) -> list[Tensor]:
        """Per-image features at 1/4, 1/8 and 1/16 of ``x`` (padded to a multiple of 16)."""
        x0 = torch.cat([F.pixel_unshuffle(x - 0.5, 4), fixed_features(x)], dim=1)
        f4 = self.stem(x0)
        f8 = self.down8(f4)
        f16 = self.down16(f8)
        return [torch.cat([f4, x0], dim=1), f8, f16]

    def _g(self, s: list[Tensor], d: list[Tensor]) -> Tensor:
        h16 = self.fuse16(torch.cat([s[2], d[2]], dim=1))
        h16 = h16 + self.context(h16.mean(dim=(-2, -1)))[..., None, None]
        h8 = self.in8(torch.cat([s[1], d[1]], dim=1))
        h8 = self.fuse8(torch.cat([F.interpolate(h16, scale_factor=2.0, mode="nearest"), h8], dim=1))
        h4 = self.in4(torch.cat([s[0], d[0]], dim=1))
        h4 = self.fuse4(torch.cat([F.interpolate(h8, scale_factor=2.0, mode="nearest"), h4], dim=1))
        return self.out(h4)

    def forward_lowres(self, reference: Tensor, image: Tensor) -> Tensor:
        """Maps at 1/4 of the padded resolution (what training regresses)."""
        # Each half runs as its own call (never batched together), so that swapping the inputs
        # reproduces the same floating-point operations and the anti-symmetry is bit-exact.
        fr, fi = self.encode(pad16(reference)), self.encode(pad16(image))
        s = [a + b for a, b in zip(fr, fi)]
        return self._g(s, [b - a for a, b in zip(fr, fi)]) - self._g(s, [a - b for a, b in zip(fr, fi)])

    def forward(self, reference: Tensor, image: Tensor, lowres: bool = False) -> Tensor:
        """Maps (N, 8, H, W); with ``lowres=True`` the 1/4-resolution maps of the padded input."""
        h, w = reference.shape[-2:]
        low = self.forward_lowres(reference, image)
        if lowres:
            return low
        up = F.interpolate(low, scale_factor=4.0, mode="bilinear", align_corners=False)
        return up[..., :h, :w]
