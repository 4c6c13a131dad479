"""The anti-symmetric distortion predictor P(reference, image) -> signed maps (N, 8, H, W).

Built for cost: nothing but a space-to-depth reshape runs at full resolution::

    x --space-to-depth(4)--> cells (48 ch) + fixed features (1/4) --> encoder E, once per image
                                                                      -> f4, f8, f16 (1/4, 1/8, 1/16)
    s = E(ref) + E(img)  (even under swapping)     d = E(img) - E(ref)  (odd)
    low-resolution pair head g at 1/16 and 1/8, evaluated in both orders: h8 = g(s, d) - g(s, -d);
        its global context reads the mean of its 1/16 features (and, with ``stats=True``, the sum of
        both images' whole-image tone statistics: a description of the scene, the same in both orders)
    1/4 head, evaluated once and odd in d by construction:
        z = up(h8) + A d4  (A linear, no bias)      z = z * sigmoid(B s4)  (even gate)
        maps4 = C odd_act(z)  (C linear, no bias; odd_act(-z) == -odd_act(z) bit for bit)
    maps = bilinear x4 upsampling of maps4, cropped to the input size

Swapping the inputs leaves ``s`` unchanged and negates ``d`` and ``h8`` exactly in floating point,
so ``P(a, b) == -P(b, a)`` and ``P(a, a) == 0`` hold bit for bit, for any weights.

Frozen in eval mode with gradients on (inside a loss), the fixed features and the pair head are
recomputed in backward (activation checkpointing) rather than kept: the same values and gradients,
about 0.6x the memory kept for backward (``python -m benchmarks.predictor_speed``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from ..channels import CHANNELS
from .features import N_FIXED, N_GLOBAL, N_HUE, fixed_features, global_features

#: Smallest accepted height and width; inputs are padded internally to a multiple of 16.
MIN_SIZE = 16
#: Bound on the 1/16 pair features before their global mean is taken, in eval mode. The trained
#: networks stay below about 7 on engine triplets (v1: 5.5, v3: 6.8, v4: 6.6; v5 passes it on 57 of
#: 6.7 million values of the 204 cbsd68 evaluation triplets, at most 29.7); without a bound, one
#: out-of-distribution region (measured: 3,240 on a noisy, compressed, contrast-changed reference)
#: reached every pixel through the mean. Not applied in training mode: there a clamp hid a unit's
#: excursion past the bound from the loss (zero gradient), so it grew unchecked and the unit stayed
#: dead; runs that met a loss spike near step 2,000 ended with up to 43 of 64 units stuck beyond it.
H16_BOUND = 20.0


def _conv(cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, padding=k // 2), nn.SiLU())


class OddConv1x1(nn.Conv2d):
    """1x1 convolution without bias, so odd: f(-x) == -f(x) bit for bit.

    It runs with an explicit zero bias (a non-persistent buffer), because oneDNN's bias-free 1x1
    kernels are several times slower on CPU; adding +0.0 keeps the oddness exact.

    Example:
        >>> f, x = OddConv1x1(4, 2), torch.randn(1, 4, 3, 3)
        >>> bool((f(-x) == -f(x)).all())
        True
    """

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(cin, cout, 1, bias=False)
        self.register_buffer("zero_bias", torch.zeros(cout), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        """The 1x1 convolution of ``x`` (N, cin, H, W) -> (N, cout, H, W)."""
        return F.conv2d(x, self.weight, self.zero_bias.to(self.weight.dtype))


def odd_act(z: Tensor) -> Tensor:
    """z * sigmoid(|z|): smooth, odd bit for bit (computed from |z|), slope 1/2 at 0.

    Example:
        >>> z = torch.randn(5)
        >>> bool((odd_act(-z) == -odd_act(z)).all()), odd_act(torch.zeros(1)).item()
        (True, 0.0)
    """
    return z * torch.sigmoid(z.abs())


def upsample_maps(low: Tensor, h: int, w: int) -> Tensor:
    """Full-resolution maps (N, 8, h, w) from the 1/4-resolution maps of the padded input
    (``forward(..., lowres=True)``): bilinear upsampling by 4, cropped to the image.

    Example:
        >>> upsample_maps(torch.zeros(1, 8, 8, 8), 30, 17).shape
        torch.Size([1, 8, 30, 17])
    """
    return F.interpolate(low, scale_factor=4.0, mode="bilinear", align_corners=False)[..., :h, :w]


def pad16(x: Tensor) -> Tensor:
    """Pad right and bottom (replicate) to a multiple of 16, keeping the 8x8 JPEG grid aligned.

    Example:
        >>> pad16(torch.rand(1, 3, 17, 32)).shape
        torch.Size([1, 3, 32, 32])
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % 16, (-w) % 16
    return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x


class DistortionPredictor(nn.Module):
    """Signed per-channel distortion maps of ``image`` relative to ``reference``.

    Inputs (N, 3, H, W) in [0, 1] with H, W >= 16; output (N, 8, H, W) in
    :data:`~pixelperfect_loss.channels.CHANNELS` order (or the native 1/4-resolution maps of the
    padded input with ``lowres=True``). This module does not validate its inputs: use
    :func:`pixelperfect_loss.functional.distortion_maps` or the loss for that. ``hue`` adds the
    hue direction to the fixed inputs (:func:`~pixelperfect_loss.nets.features.fixed_features`), and
    ``stats`` gives the pair head's global context the sum of both images' whole-image tone statistics
    (:func:`~pixelperfect_loss.nets.features.global_features`), which describes the scene without saying
    what changed and is the same in both orders (their difference, in an earlier version, spread changes
    image-wide). Both are on in the shipped weights since v7 and by default; ``False`` builds the
    networks of v6 and earlier (weights/README.md).

    Example:
        >>> net = DistortionPredictor()
        >>> a, b = torch.rand(1, 3, 40, 24), torch.rand(1, 3, 40, 24)
        >>> bool((net(a, b) == -net(b, a)).all()), net(a, a).abs().max().item()
        (True, 0.0)
    """

    def __init__(self, width: int = 32, hue: bool = True, stats: bool = True) -> None:
        super().__init__()
        w1, w2, w3, w4 = width * 3 // 4, width * 3 // 2, width * 2, width // 2
        self.width, self.hue, self.stats = width, hue, stats
        n_fixed = N_FIXED + N_HUE * hue
        self.stem_cells = nn.Conv2d(48, w1, 1)
        self.stem_fixed = nn.Conv2d(n_fixed, w1, 1)
        self.down8 = nn.Sequential(_conv(w1, w2, 3, 2), _conv(w2, w2))
        self.down16 = nn.Sequential(_conv(w2, w3, 3, 2), _conv(w3, w3))
        # low-resolution pair head g(s, d), evaluated in both orders
        self.fuse16 = nn.Sequential(_conv(2 * w3, w3), _conv(w3, w3))
        self.context = nn.Linear(w3 + N_GLOBAL * stats, w3)
        self.in8 = _conv(2 * w2, w2, 1)
        self.fuse8 = nn.Sequential(_conv(w3 + w2, w2, 1), _conv(w2, w4))
        # 1/4 head, odd in d
        self.odd_in = OddConv1x1(w1 + n_fixed, w4)
        self.gate = nn.Conv2d(w1 + n_fixed, w4, 1)
        self.out = OddConv1x1(w4, len(CHANNELS))

    def encode(self, x: Tensor) -> list[Tensor]:
        """Per-image features at 1/4, 1/8 and 1/16 of ``x`` (padded to a multiple of 16), and with ``stats`` the
        image's whole-image statistics (N, 8).

        Example:
            >>> f4, f8, f16, g = DistortionPredictor().encode(torch.rand(1, 3, 32, 32))
            >>> [f.shape[-1] for f in (f4, f8, f16)], tuple(g.shape)
            ([8, 4, 2], (1, 8))
        """
        cells = F.pixel_unshuffle(x, 4)
        if cells.requires_grad:  # recompute the cheap fixed features in backward instead of storing them
            fixed = checkpoint(fixed_features, cells, self.hue, use_reentrant=False)
        else:
            fixed = fixed_features(cells, self.hue)
        f4 = F.silu(self.stem_cells(cells) + self.stem_fixed(fixed))
        f8 = self.down8(f4)
        out = [torch.cat([f4, fixed], dim=1), f8, self.down16(f8)]
        return out + [global_features(cells)] if self.stats else out

    def _g(self, s8: Tensor, s16: Tensor, d8: Tensor, d16: Tensor, *sd: Tensor) -> Tensor:
        h16 = self.fuse16(torch.cat([s16, d16], dim=1))
        if not self.training:
            h16 = h16.clamp(-H16_BOUND, H16_BOUND)
        h16 = h16 + self.context(torch.cat([h16.mean(dim=(-2, -1)), *sd], dim=1))[..., None, None]
        h8 = self.in8(torch.cat([s8, d8], dim=1))
        return self.fuse8(torch.cat([F.interpolate(h16, scale_factor=2.0, mode="nearest"), h8], dim=1))

    def _pair(self, r8: Tensor, r16: Tensor, i8: Tensor, i16: Tensor, *rg_ig: Tensor) -> Tensor:
        """The pair head at 1/8 in both orders, h8 = g(s, d) - g(s, -d), from both images' 1/8 and 1/16 features
        (and the sum of their global statistics, with ``stats=True``)."""
        s8, s16 = r8 + i8, r16 + i16
        sg = [rg_ig[0] + rg_ig[1]] if rg_ig else []
        return self._g(s8, s16, i8 - r8, i16 - r16, *sg) - self._g(s8, s16, r8 - i8, r16 - i16, *sg)

    def forward(self, reference: Tensor, image: Tensor, lowres: bool = False) -> Tensor:
        """Maps (N, 8, H, W); with ``lowres=True`` the 1/4-resolution maps of the padded input."""
        h, w = reference.shape[-2:]
        # contiguous: inputs in different memory layouts (e.g. one channels_last) would otherwise run different
        # floating-point operations in the two orders, and P(a, b) == -P(b, a) would hold only to rounding
        reference, image = reference.contiguous(), image.contiguous()
        # Each image is encoded by its own call and the pair head runs once per order, never
        # batched together, so that swapping the inputs repeats the same floating-point operations.
        fr, fi = self.encode(pad16(reference)), self.encode(pad16(image))
        if not self.training and (fr[1].requires_grad or fi[1].requires_grad):
            # the frozen network inside a loss: the pair head is recomputed in backward instead of keeping its
            # activations (the same values and gradients, bit for bit; in training it would only cost time)
            h8 = checkpoint(self._pair, *fr[1:3], *fi[1:3], *fr[3:], *fi[3:], use_reentrant=False)
        else:
            h8 = self._pair(*fr[1:3], *fi[1:3], *fr[3:], *fi[3:])
        z = F.interpolate(h8, scale_factor=2.0, mode="bilinear", align_corners=False) + self.odd_in(fi[0] - fr[0])
        z = z * torch.sigmoid(self.gate(fr[0] + fi[0]))
        low = self.out(odd_act(z))
        return low if lowres else upsample_maps(low, h, w)
