"""PixelPerfect: the metric API (maps, relational score, ranking, comparison, report).

Scores are *relational*: they compare images of one scene against one reference. An image
identical to its reference scores exactly 0, every other image below 0, higher is better. Scores
of different references are not promised to be comparable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

import torch
from torch import Tensor, nn

from ._checks import MIN_SIZE, check_pair
from .channels import CHANNELS
from .functional import crop_cells, run_predictor
from .nets import scorer_features
from .nets.predictor import upsample_maps

#: |map| above which a pixel counts as affected in :meth:`PixelPerfect.report`.
AREA_THRESHOLD = 0.1


class PixelPerfect(nn.Module):
    """Pretrained, frozen predictor and scorer behind one module.

    Args:
        weights_path: a folder holding ``predictor.safetensors`` and ``scorer.safetensors``
            (default: the packaged weights, see :mod:`pixelperfect_loss.weights`).
        check_range: raise on values outside [0, 1].

    Example:
        >>> pp = PixelPerfect()
        >>> ref = torch.rand(1, 3, 64, 64)
        >>> pp.score(ref, ref).tolist()
        [0.0]
        >>> noisy = (ref + 0.1 * torch.randn_like(ref)).clamp(0, 1)
        >>> bool(pp.score(ref, noisy) < 0)
        True
        >>> p = pp.compare(ref, ref, noisy); bool(p > 0.5)
        True
    """

    def __init__(self, weights_path: str | Path | None = None, *, check_range: bool = True, **hub: Any) -> None:
        super().__init__()
        from .weights import load_predictor, load_scorer

        self.predictor = load_predictor(weights_path, **hub)
        self.scorer = load_scorer(weights_path, **hub)
        self.check_range = check_range
        self.eval()

    @classmethod
    def from_pretrained(cls, name: str = "pixelperfect-small", revision: str | None = None, *,
                        cache_dir: str | Path | None = None, **kwargs: Any) -> "PixelPerfect":
        """A named, versioned model (see :func:`pixelperfect_loss.weights.resolve_pretrained`).

        Example:
            >>> PixelPerfect.from_pretrained("pixelperfect-small", revision="v7").training
            False
        """
        from .weights import resolve_pretrained

        return cls(resolve_pretrained(name, revision, cache_dir=cache_dir), **kwargs)

    def train(self, mode: bool = True) -> "PixelPerfect":
        super().train(mode)
        self.predictor.eval()
        self.scorer.eval()
        return self

    def _pair(self, reference: Tensor, image: Tensor, name: str = "image") -> tuple[Tensor, Tensor]:
        return check_pair(reference, image, min_size=MIN_SIZE, check_range=self.check_range,
                          names=("reference", name))

    def maps(self, reference: Tensor, image: Tensor) -> Tensor:
        """Signed maps (N, 8, H, W) of ``image`` relative to ``reference``, in CHANNELS order."""
        return run_predictor(self.predictor, *self._pair(reference, image))

    def features(self, reference: Tensor, image: Tensor, name: str = "image") -> Tensor:
        """(N, 32) scorer features: map features (mean + and - part per channel), then generic ones."""
        ref, img = self._pair(reference, image, name)
        return self._features(ref, img).to(ref.dtype)

    def _features(self, ref: Tensor, img: Tensor, maps: Tensor | None = None) -> Tensor:
        # in at least float32 whatever the inputs' and the networks' dtype (the maps' mean parts and the scorer
        # then see the precision of float32 inputs); cast to the inputs' dtype only at the end
        if maps is None:  # the native 1/4-resolution maps, in the network's dtype
            maps = run_predictor(self.predictor, ref, img, lowres=True, cast=False)
        return scorer_features(maps.to(torch.promote_types(maps.dtype, torch.float32)), ref, img)

    def score(self, reference: Tensor, image: Tensor, name: str = "image") -> Tensor:
        """(N,) relational score: 0 for an identical image, lower is worse. Differentiable."""
        ref, img = self._pair(reference, image, name)
        feats = self._features(ref, img)
        p = next(self.scorer.parameters())
        return self.scorer(feats.to(p.dtype)).to(ref.dtype)

    def rank(self, reference: Tensor, images: Sequence[Tensor]) -> Tensor:
        """(N, K) indices into ``images``, best first, for each sample of the batch."""
        if isinstance(images, Tensor) or not isinstance(images, Iterable):
            raise TypeError("images: expected a non-empty list of image tensors, one per candidate")
        images = list(images)  # a generator too
        if not images:
            raise TypeError("images: expected a non-empty list of image tensors, one per candidate")
        with torch.no_grad():
            scores = torch.stack([self.score(reference, im, f"images[{k}]") for k, im in enumerate(images)], 1)
        return torch.argsort(scores, dim=1, descending=True, stable=True)

    def compare(self, reference: Tensor, a: Tensor, b: Tensor) -> Tensor:
        """(N,) probability that ``a`` is better than ``b``; ``compare(r, a, b) + compare(r, b, a) == 1``."""
        d = self.score(reference, a, "a") - self.score(reference, b, "b")
        # evaluate the sigmoid on the non-negative side only, so that the two orders sum to 1 exactly
        return torch.where(d >= 0, torch.sigmoid(d.abs()), 1 - torch.sigmoid(d.abs()))

    def report(self, reference: Tensor, image: Tensor) -> list[dict[str, Any]]:
        """Per sample: the score, and per channel the mean signed map value and the affected area
        (fraction of pixels with |map| > 0.1); ``other`` is the part of the score due to the generic
        difference signal (distortions outside the eight channels)."""
        with torch.no_grad():
            ref, img = self._pair(reference, image)
            h, w = ref.shape[-2:]
            # one predictor pass: its native maps feed the score, and their upsampling is what maps() returns
            low = run_predictor(self.predictor, ref, img, lowres=True, cast=False, crop=False)
            feats = self._features(ref, img, crop_cells(low, h, w))
            p = next(self.scorer.parameters())
            contrib = self.scorer.contributions(feats.to(p.dtype))
            maps = upsample_maps(low, h, w).to(ref.dtype)
        out = []
        for i in range(maps.shape[0]):
            entry: dict[str, Any] = {"score": float(contrib[i].sum())}
            for c, name in enumerate(CHANNELS):
                m = maps[i, c]
                entry[name] = {"mean": float(m.mean()), "area": float((m.abs() > AREA_THRESHOLD).float().mean()),
                               "score_share": float(contrib[i, c] + contrib[i, c + 8])}
            entry["other"] = {"score_share": float(contrib[i, 16:].sum())}
            out.append(entry)
        return out
