"""Input checks shared by every public entry point.

Each check raises a :class:`TypeError` or :class:`ValueError` that names the
argument and what was expected, so that bad input never reaches a convolution.
"""

from __future__ import annotations

import numbers

import torch
from torch import Tensor

#: Smallest height and width accepted by the networks (pixels).
MIN_SIZE = 16
#: Values this far outside [0, 1] pass the range check: float rounding, e.g. a normalised blur of a white region,
#: gives 1 + 1.2e-7 in float32. Above 1 the tolerance grows to 4 units in the last place of a coarser dtype
#: (bfloat16: 0.03); below 0 only to the dtype's smallest normal number (float16: 6e-5): rounding values in [0, 1]
#: never makes them negative.
RANGE_TOLERANCE = 1e-6


def check_image(x: object, name: str = "image", *, min_size: int = 1, check_range: bool = True) -> Tensor:
    """Validate one image batch and return it as (N, 3, H, W).

    Accepts float tensors of shape (N, C, H, W) with C = 3 (RGB) or C = 1
    (gray, replicated to RGB), values in [0, 1] (up to :data:`RANGE_TOLERANCE` of float rounding);
    ``check_range=False`` skips both the range check and the NaN / Inf check.

    Example:
        >>> check_image(torch.rand(2, 1, 32, 32)).shape
        torch.Size([2, 3, 32, 32])
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor with values in [0, 1], got dtype {x.dtype}"
                        " (convert uint8 images with x.float() / 255)")
    if x.ndim != 4:
        raise ValueError(f"{name}: expected shape (N, C, H, W), got {tuple(x.shape)} ({x.ndim} dimensions)")
    n, c, h, w = x.shape
    if n == 0:
        raise ValueError(f"{name}: expected a non-empty batch, got shape {tuple(x.shape)}")
    if c not in (1, 3):
        raise ValueError(f"{name}: expected 1 (gray) or 3 (RGB) channels, got {c} in shape {tuple(x.shape)}")
    if h < min_size or w < min_size:
        raise ValueError(f"{name}: expected height and width >= {min_size}, got {h}x{w}")
    if check_range:
        with torch.no_grad():
            lo, hi = torch.aminmax(x.detach())
            lo, hi = float(lo), float(hi)
        if lo != lo or hi != hi or abs(lo) == float("inf") or abs(hi) == float("inf"):
            raise ValueError(f"{name}: contains NaN or Inf values")
        tol = max(RANGE_TOLERANCE, 4 * torch.finfo(x.dtype).eps)  # rounding, e.g. a normalised blur of ones
        if lo < -max(RANGE_TOLERANCE, torch.finfo(x.dtype).tiny) or hi > 1.0 + tol:
            raise ValueError(f"{name}: expected values in [0, 1], got range [{lo:.9g}, {hi:.9g}]"
                             " (for images in [-1, 1] pass (x + 1) / 2; pass check_range=False to skip this check)")
    if c == 1:
        x = x.expand(n, 3, h, w)
    return x


def check_pair(reference: object, image: object, *, min_size: int = MIN_SIZE, check_range: bool = True,
               names: tuple[str, str] = ("reference", "image")) -> tuple[Tensor, Tensor]:
    """Validate a (reference, image) pair: each as :func:`check_image`, same shape and device.

    Example:
        >>> r, i = check_pair(torch.rand(1, 3, 32, 32), torch.rand(1, 1, 32, 32))
        >>> i.shape
        torch.Size([1, 3, 32, 32])
    """
    ref = check_image(reference, names[0], min_size=min_size, check_range=check_range)
    img = check_image(image, names[1], min_size=min_size, check_range=check_range)
    both = f"{names[0]} and {names[1]}"
    if ref.device != img.device:
        raise ValueError(f"{both}: expected the same device, got {ref.device} and {img.device}")
    if ref.shape != img.shape:
        raise ValueError(f"{both}: expected the same shape, got {tuple(reference.shape)} and {tuple(image.shape)}")
    if ref.dtype != img.dtype:
        dtype = torch.promote_types(ref.dtype, img.dtype)
        ref, img = ref.to(dtype), img.to(dtype)
    return ref, img


def check_strength(t: object, n: int, name: str = "intensity", *, signed: bool = False,
                   like: Tensor | None = None) -> Tensor:
    """Per-sample strengths as an (N,) tensor on ``like``'s device and dtype.

    Example:
        >>> check_strength(0.5, 3)
        tensor([0.5000, 0.5000, 0.5000])
    """
    lo = -1.0 if signed else 0.0
    if isinstance(t, bool):
        raise TypeError(f"{name}: expected a float or a tensor of shape ({n},), got bool")
    if isinstance(t, numbers.Real):  # numpy scalars (np.float32 is not a float) too
        t = torch.full((n,), float(t))
    if not isinstance(t, Tensor):
        raise TypeError(f"{name}: expected a float or a tensor of shape ({n},), got {type(t).__name__}")
    if t.ndim == 0:
        t = t.expand(n)
    if t.shape != (n,):
        raise ValueError(f"{name}: expected shape ({n},) (one value per sample), got {tuple(t.shape)}")
    if like is not None:
        t = t.to(device=like.device, dtype=like.dtype)
    if bool(((t < lo) | (t > 1) | torch.isnan(t)).any()):
        raise ValueError(f"{name}: expected values in [{lo:g}, 1], got {t.tolist()}")
    return t
