"""Pure functions: distortion maps and the PixelPerfect loss.

The pretrained predictor is loaded once and cached per (device, dtype); pass ``net`` to use
your own. Inputs are checked (:mod:`pixelperfect_loss._checks`) before any convolution.
"""

from __future__ import annotations

import math
import numbers
from typing import Mapping, Sequence

import torch
from torch import Tensor, nn

from ._checks import MIN_SIZE, check_pair
from .channels import CHANNELS, INDEX, channel_indices

DIRECTIONS = ("both", "more", "less")
REDUCTIONS = ("mean", "sum", "none")
GUARD = 0.1  # default weight of the guard term (see loss_from_maps)
_CACHE: dict[tuple[str, torch.dtype], nn.Module] = {}


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def default_predictor(device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> nn.Module:
    """The packaged pretrained predictor, frozen, in eval mode, cached per (device, dtype).

    Example:
        >>> default_predictor().training
        False
    """
    key = (str(torch.device(device)), dtype)
    if key not in _CACHE:
        from .weights import load_predictor

        _CACHE[key] = load_predictor().to(device=device, dtype=dtype)
    return _CACHE[key]


def run_predictor(net: nn.Module, reference: Tensor, image: Tensor, lowres: bool = False,
                  cast: bool = True, crop: bool = True) -> Tensor:
    """Apply ``net`` in its own dtype to a checked pair and return maps in the inputs' dtype
    (in the network's dtype with ``cast=False``, for reductions that must not lose precision).

    With ``lowres=True``, the predictor's native maps at 1/4 resolution (cropped to the cells that
    cover the image), which is what the loss averages: the same information, without computing and
    storing full-resolution maps; with ``crop=False`` as well, all the cells of the padded input
    (:func:`crop_cells` and :func:`~pixelperfect_loss.nets.predictor.upsample_maps` then give both
    resolutions from one pass).
    """
    if not isinstance(net, nn.Module):
        raise TypeError(f"net: expected a torch.nn.Module (a DistortionPredictor), got {type(net).__name__}")
    p = next(net.parameters(), None)
    if p is None:
        raise TypeError(f"net: expected a DistortionPredictor (a module with parameters), got {type(net).__name__}")
    if p.device != reference.device:
        raise ValueError(f"net is on {p.device} but the images are on {reference.device}; "
                         f"move one of them (e.g. loss_fn.to({str(reference.device)!r}))")
    h, w = reference.shape[-2:]
    # contiguous: two equal images in different memory layouts (e.g. channels_last) must run the
    # same floating-point operations, or P(a, a) == 0 would hold only to rounding
    out = net(reference.to(p.dtype).contiguous(), image.to(p.dtype).contiguous(), lowres=lowres)
    if lowres and crop:
        out = crop_cells(out, h, w)
    return out.to(reference.dtype) if cast else out


def crop_cells(low: Tensor, h: int, w: int) -> Tensor:
    """The 1/4-resolution cells of a padded input's maps that cover an (h, w) image.

    Example:
        >>> crop_cells(torch.zeros(1, 8, 8, 8), 30, 17).shape
        torch.Size([1, 8, 8, 5])
    """
    return low[..., :-(-h // 4), :-(-w // 4)]


def distortion_maps(reference: Tensor, image: Tensor, net: nn.Module | None = None, *,
                    check_range: bool = True) -> Tensor:
    """Signed maps (N, 8, H, W) of how ``image`` differs from ``reference``, in CHANNELS order.

    Positive: the image has more of the channel (more blur, more noise, brighter, warmer...).
    Inputs (N, 3 or 1, H, W) in [0, 1], H and W >= 16. Exactly anti-symmetric:
    ``distortion_maps(a, b) == -distortion_maps(b, a)``.

    Example:
        >>> x = torch.rand(1, 3, 64, 64)
        >>> distortion_maps(x, x).abs().max().item()
        0.0
        >>> m = distortion_maps(x, (x * 0.6).clamp(0, 1))  # darker
        >>> bool(m[:, CHANNELS.index("brightness")].mean() < 0)
        True
    """
    ref, img = check_pair(reference, image, min_size=MIN_SIZE, check_range=check_range)
    if net is None:
        net = default_predictor(ref.device, _compute_dtype(ref.dtype))
    return run_predictor(net, ref, img)


def check_loss_options(channels: Sequence[str] | str | None,
                       weights: Sequence[float] | Mapping[str, float] | Tensor | None,
                       direction: str, reduction: str, guard: float = 0.0) -> Tensor:
    """Validate the loss options and return the (8,) per-channel weight vector (0 = ignored).

    ``weights`` is one value per selected channel, in the order of ``channels``, or a mapping from
    channel name to weight: with ``channels=None`` its keys select the channels; otherwise every key
    must be a selected channel and the selected channels it leaves out weigh 1.

    Example:
        >>> check_loss_options(["blur"], None, "more", "mean")[:2].tolist()
        [1.0, 0.0]
        >>> check_loss_options(None, {"noise": 2.0, "blur": 0.5}, "both", "mean")[:3].tolist()
        [0.5, 2.0, 0.0]
    """
    if isinstance(weights, Mapping) and channels is None:  # the mapping's keys pick the channels
        if not weights:
            raise ValueError("weights: expected at least one channel name in the mapping, got an empty mapping")
        bad = [k for k in weights if not isinstance(k, str) or k not in CHANNELS]
        if bad:
            raise ValueError(f"weights: unknown channel {bad[0]!r} in the mapping's keys; valid channels are "
                             f"{', '.join(CHANNELS)}")
        channels = list(weights)
    idx = channel_indices(channels)
    if isinstance(weights, Mapping):
        extra = [k for k in weights if not isinstance(k, str) or k not in CHANNELS or INDEX[k] not in idx]
        if extra:
            raise ValueError(f"weights: keys must be selected channel names ({', '.join(CHANNELS[i] for i in idx)}), "
                             f"got {extra[0]!r}")
        weights = [weights.get(CHANNELS[i], 1.0) for i in idx]
    if isinstance(guard, Tensor) and guard.numel() == 1 and guard.dtype.is_floating_point:
        guard = float(guard)
    if isinstance(guard, bool) or not isinstance(guard, numbers.Real):
        raise TypeError(f"guard: expected a non-negative float, got {type(guard).__name__}")
    guard = float(guard)
    if not math.isfinite(guard) or guard < 0:
        raise ValueError(f"guard: expected a finite non-negative float, got {guard!r}")
    if direction not in DIRECTIONS:
        raise ValueError(f"direction: expected one of {', '.join(DIRECTIONS)}, got {direction!r}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction: expected one of {', '.join(REDUCTIONS)}, got {reduction!r}")
    w = torch.ones(len(idx), dtype=torch.float64)
    if weights is not None:
        if isinstance(weights, str) or (isinstance(weights, Tensor) and weights.dtype == torch.bool):
            raise TypeError(f"weights: expected numbers or a mapping from channel name to number, got {weights!r}")
        try:
            w = torch.as_tensor(weights.detach() if isinstance(weights, Tensor) else weights,
                                dtype=torch.float64).flatten().cpu()
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"weights: expected numbers or a mapping from channel name to number, "
                            f"got {type(weights).__name__}: {weights!r}") from None
        if w.numel() != len(idx):
            raise ValueError(f"weights: expected {len(idx)} values (one per selected channel), got {w.numel()}")
        if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
            raise ValueError(f"weights: expected finite non-negative values, got {w.tolist()}")
        w32 = w.float()  # the dtype the module keeps them in
        if not bool(torch.isfinite(w32).all()) or bool(((w > 0) & (w32 == 0)).any()):
            raise ValueError(f"weights: expected values that float32 holds (at most {torch.finfo(torch.float32).max:.3g}, "
                             f"and positive ones not rounding to 0), got {w.tolist()}")
        if not bool((w > 0).any()):
            raise ValueError(f"weights: expected at least one positive weight (with all zero only the guard term is left), "
                             f"got {w.tolist()}")
    full = torch.zeros(len(CHANNELS), dtype=torch.float64)
    full[idx] = w
    return full.float()


def loss_from_maps(maps: Tensor, channel_weights: Tensor, direction: str = "both",
                   reduction: str = "mean", out_dtype: torch.dtype | None = None, guard: float = 0.0) -> Tensor:
    """Penalty from signed maps: |m| ("both"), relu(m) ("more") or relu(-m) ("less"),
    averaged over pixels (or map cells), weighted and summed over channels; then reduced over the batch.

    ``guard`` adds ``guard * mean(|m| - penalty)`` summed over all channels: the part of every map
    that the selection leaves free (unselected channels in both directions, the other direction of
    the selected ones) is held near zero with a small weight, so that an optimiser cannot lower the
    selected maps by pushing its output into a region the predictor reads as a large change on
    another channel. The reductions run in at least float32; the result is cast to ``out_dtype``
    (default: the maps').

    Example:
        >>> m = torch.zeros(2, 8, 4, 4); m[:, 0] = -0.5
        >>> w = torch.ones(8)
        >>> loss_from_maps(m, w, "more").item(), loss_from_maps(m, w, "less").item()
        (0.0, 0.5)
        >>> loss_from_maps(m, w, "more", guard=0.25).item()  # the free, negative part of blur
        0.125
    """
    out_dtype = out_dtype or maps.dtype
    maps = maps.to(torch.promote_types(maps.dtype, torch.float32))
    if direction == "both":
        pen = maps.abs()
    elif direction == "more":  # relu, not clamp_min: a zero slope at 0, so that output == target is a minimum
        pen = torch.relu(maps)
    else:
        pen = torch.relu(-maps)
    per_channel = pen.mean(dim=(-2, -1))
    cw = channel_weights.to(per_channel)
    per_sample = (per_channel * cw).sum(1)
    if guard:
        free = maps.abs().mean(dim=(-2, -1)) - per_channel * (cw > 0)
        per_sample = per_sample + guard * free.sum(1)
    if reduction == "mean":
        per_sample = per_sample.mean()
    elif reduction == "sum":
        per_sample = per_sample.sum()
    return per_sample.to(out_dtype)


def pixelperfect_loss(output: Tensor, target: Tensor, channels: Sequence[str] | str | None = None,
                      weights: Sequence[float] | Mapping[str, float] | Tensor | None = None, direction: str = "both",
                      reduction: str = "mean", net: nn.Module | None = None, *, guard: float = GUARD,
                      check_range: bool = True) -> Tensor:
    """The PixelPerfect loss of ``output`` against the reference ``target``.

    Gradients flow to ``output`` only. See :class:`pixelperfect_loss.PixelPerfectLoss`.

    Example:
        >>> x = torch.rand(2, 3, 32, 32)
        >>> pixelperfect_loss(x, x, channels=["blur", "noise"]).item()
        0.0
    """
    cw = check_loss_options(channels, weights, direction, reduction, guard)
    ref, img = check_pair(target, output, min_size=MIN_SIZE, check_range=check_range, names=("target", "output"))
    if net is None:
        net = default_predictor(ref.device, _compute_dtype(ref.dtype))
    maps = run_predictor(net, ref.detach(), img, lowres=True, cast=False)
    return loss_from_maps(maps, cw, direction, reduction, out_dtype=img.dtype, guard=guard)
