"""Distortion operators: one function per operator, batched, on the input's device.

Every operator has the signature ``op(x, t, generator=None) -> Tensor`` with
``x`` of shape (N, 3, H, W) in [0, 1] and ``t`` a per-sample strength of shape (N,).
One-sided operators (blur, sharpen, noise, jpeg) take ``t`` in [0, 1]; the colour
and tone operators are two-sided and take ``t`` in [-1, 1], its sign being the
direction of the channel (see :mod:`pixelperfect_loss.channels`).
``t = 0`` is the exact identity and ``|t| = 1`` is severe, calibrated to about the
strongest level of the KADID-10k distortion set (the constant of each operator is
given in its docstring). Random draws (noise, angles, scale choices) come from
``generator`` so that a seed fixes the result.
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from .._checks import check_image, check_strength

__all__ = [
    "gaussian_blur", "defocus_blur", "motion_blur", "downup_blur", "unsharp_mask",
    "gaussian_noise", "signal_noise", "chroma_noise", "jpeg", "jpeg_codec",
    "brightness_gain", "brightness_gamma", "brightness_offset",
    "contrast_linear", "contrast_curve", "saturation_luma", "saturation_hsv",
    "warmth_gain", "warmth_shift", "tint_gain", "tint_shift", "luma",
]

_LUMA = (0.299, 0.587, 0.114)


def luma(x: Tensor) -> Tensor:
    """Rec. 601 luma (N, 1, H, W) of an RGB batch.

    Example:
        >>> luma(torch.ones(1, 3, 4, 4)).mean().item()
        1.0
    """
    r, g, b = x.unbind(1)
    return (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b).unsqueeze(1)


#: Smallest height and width the operators (and so the engine) accept: filters pad by reflection.
MIN_SIZE = 3


def check_engine_images(x: object, generator: object, name: str = "x", *, check_range: bool = False) -> Tensor:
    """Images for the engine, as :func:`~pixelperfect_loss._checks.check_image` (gray replicated to RGB),
    float32 or float64 and at least :data:`MIN_SIZE` pixels a side, and a torch.Generator or None.

    Example:
        >>> check_engine_images(torch.rand(2, 1, 8, 8), None).shape
        torch.Size([2, 3, 8, 8])
    """
    x = check_image(x, name, min_size=MIN_SIZE, check_range=check_range)
    if x.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"{name}: expected float32 or float64 (the engine's filters have no 16-bit CPU kernels), "
                        f"got {x.dtype}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator: expected a torch.Generator or None, got {type(generator).__name__}")
    return x


def check_operator_input(x: object, t: object, generator: object, *, signed: bool) -> tuple[Tensor, Tensor]:
    """Validate an operator's arguments (:func:`check_engine_images`, values in [0, 1]; ``t`` a float or one value
    per sample, in [0, 1], or [-1, 1] if ``signed``); return ``x`` and ``t`` as an (N,) tensor of x's dtype and device.

    Example:
        >>> x, t = check_operator_input(torch.rand(2, 3, 8, 8), 0.5, None, signed=False)
        >>> t.tolist()
        [0.5, 0.5]
    """
    x = check_engine_images(x, generator, check_range=True)  # NaN in gave NaN out, silently
    return x, check_strength(t, x.shape[0], "t", signed=signed, like=x)


def _operator(signed: bool) -> Callable[[Callable[..., Tensor]], Callable[..., Tensor]]:
    """Check a public operator's arguments (:func:`check_operator_input`); the engine, which
    builds valid ones itself, calls the function without the checks: ``op.unchecked``."""
    def wrap(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
        @functools.wraps(fn)
        def checked(x: Tensor, t: Tensor | float, generator: torch.Generator | None = None) -> Tensor:
            x, t = check_operator_input(x, t, generator, signed=signed)
            return fn(x, t, generator)

        checked.unchecked = fn  # type: ignore[attr-defined]
        return checked
    return wrap


def _v(t: Tensor) -> Tensor:
    return t.view(-1, 1, 1, 1)


def _uniform(n: int, lo: float, hi: float, generator: torch.Generator | None, like: Tensor) -> Tensor:
    dev = generator.device if generator is not None else torch.device("cpu")
    u = torch.rand(n, generator=generator, device=dev, dtype=torch.float64)
    return (lo + (hi - lo) * u).to(device=like.device, dtype=like.dtype)


def _randn_like(x: Tensor, generator: torch.Generator | None) -> Tensor:
    dev = generator.device if generator is not None else x.device
    return torch.randn(x.shape, generator=generator, device=dev, dtype=x.dtype).to(x.device)


def _identity_where_zero(x: Tensor, out: Tensor, t: Tensor) -> Tensor:
    """``out`` with the samples of strength 0 replaced by ``x`` exactly (filters leave a float error)."""
    # Training draws strengths >= 0.05, so on the CPU (where the check costs no device sync) the
    # full-size pass is skipped when no sample needs it.
    if t.device.type == "cpu" and not bool((t == 0).any()):
        return out
    return torch.where(_v(t) == 0, x, out)


# ----------------------------------------------------------------------------- filtering
def _filter_fft(x: Tensor, kernels: Tensor) -> Tensor:
    """Filter each sample with its own odd-sized kernel (N, k, k), reflect padding, via FFT."""
    n, c, h, w = x.shape
    k = kernels.shape[-1]
    r = k // 2
    xp = _pad_reflect(x, r)
    size = (_fast_size(xp.shape[-2]), _fast_size(xp.shape[-1]))  # zero-padded further: FFT-friendly
    kf = torch.fft.rfft2(kernels, s=size)  # the kernel at the top left, its centre at (r, r)
    y = torch.fft.irfft2(torch.fft.rfft2(xp, s=size) * kf.unsqueeze(1), s=size)
    return y[..., 2 * r:2 * r + h, 2 * r:2 * r + w]  # linear (never wrapped) outputs, centred


def _pad_reflect(x: Tensor, r: int) -> Tensor:
    """Pad by r on every side: reflected as far as the image allows (r < side), replicated beyond. So the
    pixels next to the image do not depend on r, and a sample's blur does not depend on its batch
    (r comes from the batch's largest kernel; switching the whole padding to replicate past the image's
    side made the blur of a small image, and its distance, drop as t grew)."""
    h, w = x.shape[-2:]
    rh, rw = min(r, h - 1), min(r, w - 1)
    if rh or rw:
        x = F.pad(x, (rw, rw, rh, rh), mode="reflect")
    if rh < r or rw < r:
        x = F.pad(x, (r - rw, r - rw, r - rh, r - rh), mode="replicate")
    return x


def _fast_size(n: int) -> int:
    """The smallest m >= n with no prime factor above 5 (fast FFT sizes)."""
    m = n
    while True:
        k = m
        for p in (2, 3, 5):
            while k % p == 0:
                k //= p
        if k == 1:
            return m
        m += 1


def _grid(k: int, like: Tensor) -> tuple[Tensor, Tensor]:
    a = torch.arange(k, device=like.device, dtype=like.dtype) - k // 2
    return a.view(1, k, 1), a.view(1, 1, k)  # yy, xx


def _normalise(kern: Tensor) -> Tensor:
    return kern / kern.sum(dim=(-2, -1), keepdim=True)


def _odd(v: float) -> int:
    return 2 * int(math.ceil(v)) + 1


def _gaussian_kernels(sigma: Tensor) -> Tensor:
    """(N, k, k) gaussians, each truncated to its own square of half-side ceil(3 sigma + 0.5), in a grid
    sized for the largest: a sample's kernel does not depend on the others in its batch."""
    k = _odd(3.0 * float(sigma.max()) + 0.5)
    yy, xx = _grid(k, sigma)
    s = _v(sigma).squeeze(1)
    half = torch.ceil(3.0 * s + 0.5)
    inside = (xx.abs() <= half) & (yy.abs() <= half)
    return _normalise(torch.exp(-(xx * xx + yy * yy) / (2 * s.clamp_min(1e-3) ** 2)) * inside)


def _blur_with(x: Tensor, t: Tensor, kernels: Tensor) -> Tensor:
    return _identity_where_zero(x, _filter_fft(x, kernels).clamp(0, 1), t)


@_operator(signed=False)
def gaussian_blur(x: Tensor, t: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Gaussian blur with sigma = 5 t pixels (KADID-10k level 5 uses sigma 5). Below t = 0.035 (sigma 0.18)
    the kernel's neighbours weigh under 1e-6 and the image is unchanged to float rounding.

    Example:
        >>> x = torch.rand(2, 3, 32, 32)
        >>> bool((gaussian_blur(x, torch.zeros(2)) == x).all())
        True
    """
    return _blur_with(x, t, _gaussian_kernels(5.0 * t))


@_operator(signed=False)
def defocus_blur(x: Tensor, t: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Defocus (anti-aliased disk) blur of radius 8 t pixels (KADID-10k lens blur, level 5: radius 8).
    Below t = 1/16 (a radius under half a pixel) the disk covers one pixel and the image is unchanged.

    Example:
        >>> defocus_blur(torch.rand(1, 3, 32, 32), torch.ones(1)).shape
        torch.Size([1, 3, 32, 32])
    """
    radius = 8.0 * t
    k = _odd(float(radius.max()) + 1)
    yy, xx = _grid(k, x)
    d = torch.sqrt(xx * xx + yy * yy)
    return _blur_with(x, t, _normalise((_v(radius).squeeze(1) + 0.5 - d).clamp(0, 1)))


@_operator(signed=False)
def motion_blur(x: Tensor, t: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Linear motion blur of length 20 t pixels at a random angle (KADID-10k motion blur, level 5).

    Example:
        >>> motion_blur(torch.rand(1, 3, 32, 32), torch.ones(1)).shape
        torch.Size([1, 3, 32, 32])
    """
    n = x.shape[0]
    half = 10.0 * t
    theta = _uniform(n, 0.0, math.pi, generator, x)
    k = _odd(float(half.max()) + 1)
    yy, xx = _grid(k, x)
    c, s = _v(torch.cos(theta)).squeeze(1), _v(torch.sin(theta)).squeeze(1)
    along = (xx * c + yy * s).clamp(-_v(half).squeeze(1), _v(half).squeeze(1))
    dx, dy = xx - along * c, yy - along * s
    d = torch.sqrt(dx * dx + dy * dy)
    return _blur_with(x, t, _normalise((1.0 - d).clamp_min(0)))


def _down_up(x: Tensor, factor: int, mode: str) -> Tensor:
    h, w = x.shape[-2:]
    small = F.interpolate(x, size=(max(2, round(h / factor)), max(2, round(w / factor))), mode="area")
    return F.interpolate(small, size=(h, w), mode=mode, align_corners=False)


@_operator(signed=False)
def downup_blur(x: Tensor, t: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Down-scaling by f = 1 + 3 t (area) and up-scaling back (bilinear or bicubic, random), as a blend
    of the whole factors around f: (1 - a) downup(k) + a downup(k + 1), k = floor(f), a = f - k.

    One resize by the fractional factor itself was not monotone in t: a whole factor lines the two
    grids up and blurs less than its neighbours (per image the distance fell at 69 of 500 steps of
    0.01, and t = 1, a factor of exactly 4, blurred less than t = 0.9 on average). The blend grows
    with t (to float rounding at steps of 0.01) and keeps t = 0 and t = 1 where they were.

    Example:
        >>> downup_blur(torch.rand(1, 3, 32, 32), torch.ones(1)).shape
        torch.Size([1, 3, 32, 32])
    """
    modes = _uniform(x.shape[0], 0.0, 1.0, generator, x)
    out = []
    for xi, ti, mi in zip(x, t.tolist(), modes.tolist()):
        f = 1.0 + 3.0 * ti
        k = min(int(f), 3)
        mode = "bicubic" if mi < 0.5 else "bilinear"
        lo = xi[None] if k == 1 else _down_up(xi[None], k, mode)
        out.append(torch.lerp(lo, _down_up(xi[None], k + 1, mode), f - k))
    return _identity_where_zero(x, torch.cat(out).clamp(0, 1), t)


@_operator(signed=False)
def unsharp_mask(x: Tensor, t: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Over-sharpening: x + 4 t (x - gaussian(x, sigma)), sigma uniform in [0.7, 3.0].

    The negative direction of the blur channel; strong values leave visible halos.

    Example:
        >>> x = torch.rand(1, 3, 32, 32)
        >>> bool((unsharp_mask(x, torch.zeros(1)) == x).all())
        True
    """
    sigma = _uniform(x.shape[0], 0.7, 3.0, generator, x)
    blurred = _filter_fft(x, _gaussian_kernels(sigma))
    return _identity_where_zero(x, (x + 4.0 * _v(t) * (x - blurred)).clamp(0, 1), t)


# ----------------------------------------------------------------------------- noise
@_operator(signed=False)
def gaussian_noise(x: Tensor, t: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Additive white gaussian noise, independent per colour, sigma = 0.1 t
    (KADID-10k white noise, level 5: variance 0.01).

    Example:
        >>> x = torch.rand(1, 3, 32, 32)
        >>> bool((gaussian_noise(x, torch.zeros(1)) == x).all())
        True
    """
    return (x + 0.1 * _v(t) * _randn_like(x, generator)).clamp(0, 1)


@_operator(signed=False)
def signal_noise(x: Tensor, t: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Signal-dependent (Poisson-like) noise with sigma = 0.14 t sqrt(x + 0.01),
    equal to :func:`gaussian_noise` at mid grey.

    Example:
        >>> signal_noise(torch.rand(1, 3, 32, 32), torch.ones(1)).shape
        torch.Size([1, 3, 32, 32])
    """
    sigma = 0.14 * _v(t) * torch.sqrt(x + 0.01)
    return (x + sigma * _randn_like(x, generator)).clamp(0, 1)


@_operator(signed=False)
def chroma_noise(x: Tensor, t: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Noise on the colour-difference channels only (luma kept), slightly correlated
    (gaussian sigma 0.7 px), standard deviation 0.15 t per opponent channel
    (KADID-10k white noise in colour component).

    Example:
        >>> chroma_noise(torch.rand(1, 3, 32, 32), torch.ones(1)).shape
        torch.Size([1, 3, 32, 32])
    """
    nz = _randn_like(x[:, :2], generator)
    nz = _correlate(nz) / 0.4  # / 0.4: restore unit std after the correlation filter (energy gain ~0.4)
    cb, cr = (0.15 * _v(t) * nz).unbind(1)
    # Y kept, Cb and Cr moved: the YCbCr -> RGB change of exactly those differences (JPEG's
    # YCbCr, Cb = 0.564 (B - Y), Cr = 0.713 (R - Y)), added to the image.
    delta = torch.stack([cr / 0.713, -(0.299 / 0.587) * cr / 0.713 - (0.114 / 0.587) * cb / 0.564, cb / 0.564], 1)
    return _identity_where_zero(x, (x + delta).clamp(0, 1), t)


def _correlate(x: Tensor) -> Tensor:
    """Gaussian filter, sigma 0.7 px on a 5 x 5 window, reflect padding, per channel (separable,
    as five shifted sums per axis: several times faster on a CPU than a depthwise convolution)."""
    k = [math.exp(-i * i / (2 * 0.7**2)) for i in range(-2, 3)]
    k = [v / sum(k) for v in k]
    h, w = x.shape[-2:]
    xp = F.pad(x, (2, 2, 0, 0), mode="reflect")
    y = sum(k[i] * xp[..., i:i + w] for i in range(5))
    yp = F.pad(y, (0, 0, 2, 2), mode="reflect")
    return sum(k[i] * yp[..., i:i + h, :] for i in range(5))


# ----------------------------------------------------------------------------- compression
# Quantisation tables of the JPEG standard (ITU-T T.81, Annex K), luma and chroma.
_Q_LUMA = (16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
           14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
           49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99)
_Q_CHROMA = (17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
             47, 66, 99, 99, 99, 99, 99, 99) + (99,) * 32


def _dct_matrix(like: Tensor) -> Tensor:
    """kron(D, D) (64 x 64) of the orthonormal 8-point DCT-II matrix D (rows: frequencies): the
    coefficients of a row-major flattened 8 x 8 block b are ``kron(D, D) @ b`` (= D @ block @ D.T)."""
    return _constant("dct", like.device, like.dtype)


@functools.lru_cache(maxsize=None)
def _constant(name: str, device: torch.device, dtype: torch.dtype) -> Tensor:
    """The codec's constant tables, made once per device and dtype (never written to)."""
    if name == "dct":
        k = torch.arange(8, dtype=torch.float64).view(8, 1)
        i = torch.arange(8, dtype=torch.float64).view(1, 8)
        d = torch.cos((2 * i + 1) * k * math.pi / 16) * math.sqrt(2 / 8)
        d[0] = math.sqrt(1 / 8)
        return torch.kron(d, d).to(device=device, dtype=dtype)
    return torch.tensor(_Q_LUMA if name == "luma" else _Q_CHROMA, device=device, dtype=dtype).view(1, 8, 8)


def _quant_tables(quality: Tensor, base: str) -> Tensor:
    """(N, 8, 8) tables of the IJG quality scaling (quality 1..100, 50 = the standard's tables) of the
    standard's ``base`` table, "luma" or "chroma"."""
    q = quality.clamp(1, 100).view(-1, 1, 1)
    scale = torch.where(q < 50, 5000.0 / q, 200.0 - 2.0 * q)
    return torch.floor((_constant(base, q.device, q.dtype) * scale + 50.0) / 100.0).clamp(1, 255)


def _code_plane(p: Tensor, tables: Tensor, dct: Tensor) -> Tensor:
    """Quantise the 8x8 block DCT of planes (N, h, w) (h, w multiples of 8, level-shifted) and decode.

    ``dct`` is the 64 x 64 two-dimensional DCT, kron(D, D): a flattened block b has coefficients
    ``dct @ b`` (the same as D @ block @ D.T), so the whole plane is one matrix product, not
    thousands of 8 x 8 ones."""
    n, h, w = p.shape
    blocks = p.view(n, h // 8, 8, w // 8, 8).transpose(2, 3).reshape(n, -1, 64)  # (N, blocks, 64)
    coef = blocks @ dct.T
    q = tables.view(n, 1, 64)
    blocks = (torch.round(coef / q) * q) @ dct
    return blocks.view(n, h // 8, w // 8, 8, 8).transpose(2, 3).reshape(n, h, w)


def _means2x2(x: Tensor) -> Tensor:
    """Means of 2x2 blocks (even H, W), summed in the order ``F.avg_pool2d(x, 2)`` sums them: the same
    values to the bit (tested), in about half its time on a CPU."""
    return (x[..., 0::2, 0::2] + x[..., 0::2, 1::2] + x[..., 1::2, 0::2] + x[..., 1::2, 1::2]) / 4


def jpeg_codec(x: Tensor, quality: Tensor | float) -> Tensor:
    """Baseline JPEG round trip of an RGB batch at a per-sample ``quality`` (N,) (or one number) in [1, 100].

    What a JPEG encoder and decoder do, batched in torch: JFIF YCbCr on the 0..255 scale, 4:2:0
    chroma (2x2 means), 8x8 block DCT quantised with the standard's tables scaled as by libjpeg's
    quality setting, decoded with bilinear chroma upsampling. The image is padded (replicate) to a
    multiple of 16 and cropped back, so the block grid starts at the top-left pixel.

    Example:
        >>> x = torch.rand(2, 3, 20, 24)
        >>> y = jpeg_codec(x, torch.tensor([90.0, 10.0]))
        >>> y.shape, bool((y - x).abs()[1].mean() > (y - x).abs()[0].mean())
        (torch.Size([2, 3, 20, 24]), True)
    """
    x = check_engine_images(x, None)
    n = x.shape[0]
    if isinstance(quality, bool) or not isinstance(quality, (Tensor, numbers.Real)):
        raise TypeError(f"quality: expected a number or a tensor of shape ({n},), got {type(quality).__name__}")
    q = torch.as_tensor(quality).to(device=x.device, dtype=x.dtype)
    if q.ndim == 0:
        q = q.expand(n)
    if q.shape != (n,):
        raise ValueError(f"quality: expected shape ({n},) (one value per sample), got {tuple(q.shape)}")
    if bool(((q < 1) | (q > 100) | torch.isnan(q)).any()):
        raise ValueError(f"quality: expected values in [1, 100], got {q.tolist()}")
    return _jpeg_codec(x, q)


def _jpeg_codec(x: Tensor, quality: Tensor) -> Tensor:
    n, _, h, w = x.shape
    ph, pw = (-h) % 16, (-w) % 16
    v = 255.0 * (F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x)
    r, g, b = v.unbind(1)
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b
    chroma = _means2x2(torch.stack([cb, cr], 1))
    dct = _dct_matrix(x)
    quality = quality.to(x.dtype)
    y = _code_plane(y - 128.0, _quant_tables(quality, "luma"), dct) + 128.0
    hc, wc = chroma.shape[-2:]
    tc = _quant_tables(quality, "chroma").repeat_interleave(2, 0)
    chroma = _code_plane(chroma.reshape(2 * n, hc, wc), tc, dct).view(n, 2, hc, wc)
    cb, cr = F.interpolate(chroma, scale_factor=2.0, mode="bilinear", align_corners=False).unbind(1)
    rgb = torch.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], 1) / 255.0
    return rgb[..., :h, :w].clamp(0, 1)


@_operator(signed=False)
def jpeg(x: Tensor, t: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """JPEG compression (:func:`jpeg_codec`: 4:2:0, the standard's tables) at
    quality 5 + 95 (1 - t)^2 (KADID-10k JPEG, level 5: quality 4).

    Example:
        >>> jpeg(torch.rand(1, 3, 32, 32), torch.ones(1)).shape
        torch.Size([1, 3, 32, 32])
    """
    q = 5.0 + 95.0 * (1.0 - t) ** 2
    return _identity_where_zero(x, _jpeg_codec(x, q), t)


# ----------------------------------------------------------------------------- tone and colour
@_operator(signed=True)
def brightness_gain(x: Tensor, t: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Exposure change, x * 2^(0.8 t) (t in [-1, 1]; like Pillow's ImageEnhance.Brightness).

    Example:
        >>> x = torch.full((1, 3, 4, 4), 0.25)
        >>> brightness_gain(x, torch.ones(1)).mean().item() > 0.25
        True
    """
    return (x * torch.exp2(0.8 * _v(t))).clamp(0, 1)


@_operator(signed=True)
def brightness_gamma(x: Tensor, t: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Gamma curve x^(2^(-1.2 t)) (t in [-1, 1]): brightens mid-tones, keeps white; black, floored at
    1e-6 to keep the power's gradient finite, rises to at most 2.5e-3 (at t = 1).

    Example:
        >>> brightness_gamma(torch.full((1, 3, 4, 4), 0.5), -torch.ones(1)).mean().item() < 0.5
        True
    """
    return _identity_where_zero(x, x.clamp_min(1e-6) ** torch.exp2(-1.2 * _v(t)), t)


@_operator(signed=True)
def brightness_offset(x: Tensor, t: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Additive offset x + 0.25 t (t in [-1, 1]).

    Example:
        >>> brightness_offset(torch.full((1, 3, 4, 4), 0.5), torch.ones(1)).mean().item()
        0.75
    """
    return (x + 0.25 * _v(t)).clamp(0, 1)


@_operator(signed=True)
def contrast_linear(x: Tensor, t: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Linear contrast about the image's mean luma, factor 2^(1.2 t) (t in [-1, 1]; like Pillow's
    ImageEnhance.Contrast).

    Example:
        >>> x = torch.rand(1, 3, 16, 16)
        >>> bool(contrast_linear(x, -torch.ones(1)).std() < x.std())
        True
    """
    m = luma(x).mean(dim=(-2, -1), keepdim=True)
    return _identity_where_zero(x, (m + (x - m) * torch.exp2(1.2 * _v(t))).clamp(0, 1), t)


@_operator(signed=True)
def contrast_curve(x: Tensor, t: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Tone curve about the image's mean luma p (clamped to [0.05, 0.95]): an S-curve of slope up to ~3 at p
    for t > 0, its inverse (flattened mid-tones) for t < 0 (t in [-1, 1]). Each side of p is scaled to
    [-1, 1] (by p below, 1 - p above), so black and white stay fixed and the slope is the same on both sides.

    About mid grey instead, a dark photo's content sat on the curve's flat toe: "more contrast" flattened
    it (luma std of a kodak24 photo at 0.4x exposure fell in 97% of its 16x16 blocks at t = 1; now 8%),
    and the curve moved the mean luma 2.6x as far (the brightness channel's job).

    Example:
        >>> x = torch.rand(1, 3, 16, 16)
        >>> bool(contrast_curve(x, torch.ones(1)).std() > x.std())
        True
        >>> dark = 0.25 * x
        >>> bool(contrast_curve(dark, torch.ones(1)).std() > dark.std())
        True
    """
    k = _v(6.0 * t.abs()).clamp_min(1e-4)
    th = torch.tanh(k / 2)
    p = luma(x).mean(dim=(-2, -1), keepdim=True).clamp(0.05, 0.95)
    c = x - p
    span = torch.where(c < 0, p, 1 - p)
    u = c / span  # in [-1, 1]
    s_curve = torch.tanh(k * u / 2) / th
    inv_curve = torch.atanh((u * th).clamp(-0.999999, 0.999999)) * 2 / k
    out = p + span * torch.where(_v(t) > 0, s_curve, inv_curve)
    return _identity_where_zero(x, out.clamp(0, 1), t)


@_operator(signed=True)
def saturation_luma(x: Tensor, t: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Luma-preserving saturation: gray + f (x - gray), f = 1 + t for t < 0 (grey at t = -1),
    1 + 1.5 t for t > 0 (like Pillow's ImageEnhance.Color).

    Example:
        >>> x = torch.rand(1, 3, 8, 8)
        >>> y = saturation_luma(x, -torch.ones(1))
        >>> bool((y.max(1).values - y.min(1).values).max() < 1e-6)
        True
    """
    f = torch.where(t < 0, 1 + t, 1 + 1.5 * t)
    y = luma(x)
    return _identity_where_zero(x, (y + (x - y) * _v(f)).clamp(0, 1), t)


@_operator(signed=True)
def saturation_hsv(x: Tensor, t: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """HSV saturation scaled by 2^(1.5 t) (t in [-1, 1]; value and hue kept).

    Example:
        >>> saturation_hsv(torch.rand(1, 3, 8, 8), torch.ones(1)).shape
        torch.Size([1, 3, 8, 8])
    """
    # With V = max(R, G, B) and S = (V - min) / V, every channel is V - V S f(hue): scaling S
    # by k (capped at S = 1) moves each channel away from V by min(k, V / (V - min)), in closed form.
    v = x.amax(1, keepdim=True)
    spread = v - x.amin(1, keepdim=True)
    k = torch.exp2(1.5 * _v(t)).to(x.dtype)
    k = torch.minimum(k, v / spread.clamp_min(1e-12))  # grey pixels (spread 0) stay as they are
    return _identity_where_zero(x, (v - k * (v - x)).clamp(0, 1), t)


def _gains(x: Tensor, r: Tensor, g: Tensor, b: Tensor) -> Tensor:
    gains = torch.stack([r, g, b], dim=1).view(-1, 3, 1, 1)
    return (x * gains).clamp(0, 1)


def _shift(x: Tensor, r: Tensor, g: Tensor, b: Tensor) -> Tensor:
    return (x + torch.stack([r, g, b], dim=1).view(-1, 3, 1, 1)).clamp(0, 1)


@_operator(signed=True)
def warmth_gain(x: Tensor, t: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """White-balance gains towards warm (t > 0: red x (1 + 0.3 t), blue x (1 - 0.3 t)) or cool (t < 0).

    Example:
        >>> y = warmth_gain(torch.full((1, 3, 4, 4), 0.5), torch.ones(1))
        >>> bool(y[:, 0].mean() > y[:, 2].mean())
        True
    """
    return _gains(x, 1 + 0.3 * t, 1 + 0.05 * t, 1 - 0.3 * t)


@_operator(signed=True)
def warmth_shift(x: Tensor, t: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Additive colour cast along yellow-blue: red + 0.1 t, blue - 0.1 t (t in [-1, 1]).

    Example:
        >>> warmth_shift(torch.rand(1, 3, 4, 4), torch.ones(1)).shape
        torch.Size([1, 3, 4, 4])
    """
    return _shift(x, 0.1 * t, 0.02 * t, -0.1 * t)


@_operator(signed=True)
def tint_gain(x: Tensor, t: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """White-balance gains along green-magenta: green x (1 - 0.25 t), red and blue x (1 + 0.1 t).

    Example:
        >>> y = tint_gain(torch.full((1, 3, 4, 4), 0.5), torch.ones(1))
        >>> bool(y[:, 1].mean() < y[:, 0].mean())
        True
    """
    return _gains(x, 1 + 0.1 * t, 1 - 0.25 * t, 1 + 0.1 * t)


@_operator(signed=True)
def tint_shift(x: Tensor, t: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Additive colour cast along green-magenta: green - 0.08 t, red and blue + 0.04 t.

    Example:
        >>> tint_shift(torch.rand(1, 3, 4, 4), torch.ones(1)).shape
        torch.Size([1, 3, 4, 4])
    """
    return _shift(x, 0.04 * t, -0.08 * t, 0.04 * t)
