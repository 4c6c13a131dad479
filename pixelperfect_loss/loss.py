"""PixelPerfectLoss: the differentiable, per-channel, directional training loss."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Mapping, Sequence

import torch
from torch import Tensor, nn

from ._checks import MIN_SIZE, check_pair
from .channels import CHANNELS
from .functional import GUARD, check_loss_options, loss_from_maps, run_predictor


class PixelPerfectLoss(nn.Module):
    """Penalises the distortions of ``output`` relative to ``target``, channel by channel.

    Args:
        channels: channel names to penalise (see :data:`~pixelperfect_loss.CHANNELS`); all by default.
        weights: one non-negative weight per selected channel (1 each by default), or a mapping
            from channel name to weight, e.g. ``{"blur": 1.0, "noise": 0.5}``, whose keys select
            the channels when ``channels`` is None.
        direction: ``"both"`` penalises |map|, ``"more"`` only positive maps (e.g. blur but not
            sharpening, added noise but not removed noise), ``"less"`` only negative ones.
        reduction: ``"mean"`` | ``"sum"`` over the batch, or ``"none"`` for one value per sample.
        guard: weight of the guard term (default 0.1; 0 turns it off): the mean |map| of what the
            selection leaves free (the other channels, and the other direction of the selected ones).
            Without it an optimiser can lower the selected maps by producing artefacts that the
            predictor reads on other channels (measured in ``benchmarks/RESULTS.md``, downstream).
        weights_path: predictor weights (file or folder); default: the packaged weights.
        check_range: raise on values outside [0, 1] (set False to skip the check).

    The per-sample loss is
    ``sum_c w_c * mean(penalty(map_c)) + guard * sum_c mean(|map_c| - [w_c > 0] penalty(map_c))``,
    the means taken over the predictor's native map cells (4x4 pixels each; :meth:`maps` upsamples
    them to full resolution). The predictor is frozen and stays in eval mode whatever ``.train()``
    is called with; gradients flow to ``output`` only.
    Inputs are (N, 3 or 1, H, W) in [0, 1] with H, W >= 16; the result follows the input's dtype
    (computed in the module's dtype: ``.double()`` it for float64 precision).

    Example:
        >>> import torch
        >>> loss_fn = PixelPerfectLoss(channels=["blur", "noise"], direction="more")
        >>> target = torch.rand(2, 3, 64, 64)
        >>> output = target.clone().requires_grad_()
        >>> loss = loss_fn(output, target)
        >>> loss.item()
        0.0
        >>> loss.backward(); bool(torch.isfinite(output.grad).all())
        True
    """

    def __init__(self, channels: Sequence[str] | str | None = None,
                 weights: Sequence[float] | Mapping[str, float] | Tensor | None = None,
                 direction: str = "both", reduction: str = "mean", *, guard: float = GUARD,
                 weights_path: str | Path | None = None, check_range: bool = True) -> None:
        super().__init__()
        from .weights import load_predictor

        # not persistent: like direction and guard, the selection comes from the constructor, so loading a
        # checkpoint made with another selection cannot switch channels silently (see _load_from_state_dict)
        self.register_buffer("channel_weights", check_loss_options(channels, weights, direction, reduction, guard),
                             persistent=False)
        self.direction, self.reduction, self.check_range = direction, reduction, check_range
        self.guard = float(guard)
        self.predictor = load_predictor(weights_path)

    @classmethod
    def from_pretrained(cls, name: str = "pixelperfect-small", revision: str | None = None, *,
                        cache_dir: str | Path | None = None, **kwargs) -> "PixelPerfectLoss":
        """The loss on a named, versioned model (see :func:`pixelperfect_loss.weights.resolve_pretrained`).

        Example:
            >>> PixelPerfectLoss.from_pretrained("pixelperfect-small", channels=["blur"]).channels
            ['blur']
        """
        from .weights import resolve_pretrained

        return cls(weights_path=resolve_pretrained(name, revision, cache_dir=cache_dir), **kwargs)

    def train(self, mode: bool = True) -> "PixelPerfectLoss":
        super().train(mode)
        self.predictor.eval()
        return self

    @property
    def channels(self) -> list[str]:
        """Names of the channels with a non-zero weight."""
        return [c for c, w in zip(CHANNELS, self.channel_weights.tolist()) if w > 0]

    def maps(self, output: Tensor, target: Tensor) -> Tensor:
        """Signed maps (N, 8, H, W) of ``output`` relative to ``target`` (all channels)."""
        ref, img = check_pair(target, output, min_size=MIN_SIZE, check_range=self.check_range,
                              names=("target", "output"))
        return run_predictor(self.predictor, ref.detach(), img)

    def forward(self, output: Tensor, target: Tensor) -> Tensor:
        ref, img = check_pair(target, output, min_size=MIN_SIZE, check_range=self.check_range,
                              names=("target", "output"))
        maps = run_predictor(self.predictor, ref.detach(), img, lowres=True, cast=False)
        return loss_from_maps(maps, self.channel_weights, self.direction, self.reduction, out_dtype=img.dtype,
                              guard=self.guard)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs) -> None:
        # checkpoints written before the buffer was made non-persistent hold it: accepted, and checked
        saved = state_dict.pop(prefix + "channel_weights", None)
        if saved is not None and not torch.equal(saved.to(self.channel_weights), self.channel_weights):
            warnings.warn(f"{prefix}channel_weights in the checkpoint ({saved.tolist()}) differ from this "
                          f"loss's ({self.channel_weights.tolist()}); the constructor's are kept", stacklevel=3)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def extra_repr(self) -> str:
        return (f"channels={self.channels}, direction={self.direction!r}, reduction={self.reduction!r}, "
                f"guard={self.guard}")
