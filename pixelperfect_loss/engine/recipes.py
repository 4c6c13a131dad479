"""Training data from clean photos: labelled triplets and ordinally ranked sets.

A *recipe* says, per sample, which channels are applied, with which operator,
sign, strength and spatial mask. Channels are applied in a fixed, camera-like
order (tone and colour, then blur or sharpening, then noise, then compression),
each blended in through its own mask, and the label of channel c is
``sign * strength * mask`` (zero where the channel is not applied).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch
from torch import Tensor

from .._checks import check_strength
from ..channels import CHANNELS, INDEX
from . import operators as op
from .masks import _rand, random_masks
from .other import OTHER_OPERATORS

Operator = Callable[[Tensor, Tensor, "torch.Generator | None"], Tensor]

#: Operators that produce each (channel, sign). Two-sided operators receive ``sign * t``.
OPERATORS: dict[tuple[str, int], tuple[Operator, ...]] = {
    ("brightness", 1): (op.brightness_gain, op.brightness_gamma, op.brightness_offset),
    ("brightness", -1): (op.brightness_gain, op.brightness_gamma, op.brightness_offset),
    ("contrast", 1): (op.contrast_linear, op.contrast_curve),
    ("contrast", -1): (op.contrast_linear, op.contrast_curve),
    ("saturation", 1): (op.saturation_luma, op.saturation_hsv),
    ("saturation", -1): (op.saturation_luma, op.saturation_hsv),
    ("warmth", 1): (op.warmth_gain, op.warmth_shift),
    ("warmth", -1): (op.warmth_gain, op.warmth_shift),
    ("tint", 1): (op.tint_gain, op.tint_shift),
    ("tint", -1): (op.tint_gain, op.tint_shift),
    ("blur", 1): (op.gaussian_blur, op.defocus_blur, op.motion_blur, op.downup_blur),
    ("blur", -1): (op.unsharp_mask,),
    ("noise", 1): (op.gaussian_noise, op.signal_noise, op.chroma_noise),
    ("jpeg", 1): (op.jpeg,),
}
TWO_SIDED = frozenset({"brightness", "contrast", "saturation", "warmth", "tint"})
#: Order in which channels are applied to an image.
ORDER: tuple[str, ...] = ("brightness", "contrast", "saturation", "warmth", "tint", "blur", "noise", "jpeg")
#: Probability of the negative sign when the engine applies a channel directly (before swapping).
_P_NEGATIVE = {"blur": 0.3, "noise": 0.0, "jpeg": 0.0}
# Per channel, in CHANNELS order: that probability (0.5 for the two-sided channels) and the operator counts per sign.
_P_NEG = torch.tensor([0.5 if c in TWO_SIDED else _P_NEGATIVE[c] for c in CHANNELS], dtype=torch.float64)
_K_POS, _K_NEG = (torch.tensor([len(OPERATORS.get((c, sg), ())) for c in CHANNELS], dtype=torch.float64)
                  for sg in (1, -1))


class Triplets(NamedTuple):
    reference: Tensor  #: (N, 3, H, W)
    image: Tensor      #: (N, 3, H, W)
    labels: Tensor     #: (N, 8, H, W) in [-1, 1], in CHANNELS order


class RankedSets(NamedTuple):
    reference: Tensor  #: (N, 3, H, W)
    images: Tensor     #: (N, K, 3, H, W), strength growing with the index
    labels: Tensor     #: (N, K, 8, H, W), zero for "other" sets
    ranks: Tensor      #: (N, K) ordinal ranks 1..K (0 would be the reference itself)
    other: Tensor      #: (N,) True where the set was made by an operator outside the eight channels


@dataclass
class Recipe:
    """Per-sample plan: ``strength[n, c]`` in [0, 1], ``sign[n, c]`` in {-1, 0, 1},
    ``variant[n, c]`` an index into :data:`OPERATORS`, ``masks`` (N, 8, H, W)."""

    strength: Tensor
    sign: Tensor
    variant: Tensor
    masks: Tensor

    def labels(self, scale: Tensor | float = 1.0, *, in_place: bool = False) -> Tensor:
        """``sign * strength * scale * mask`` (N, 8, H, W), ``scale`` a float or (N,) in [-1, 1] (negative: a swapped
        pair's labels); ``in_place`` reuses (and so consumes) the masks."""
        s = (self.sign * self.strength * _per_sample(scale, len(self.sign), signed=True)).to(self.masks.device,
                                                                                 self.masks.dtype)[:, :, None, None]
        return self.masks.mul_(s) if in_place else s * self.masks


def random_recipe(n: int, h: int, w: int, generator: torch.Generator | None = None, *,
                  max_channels: int = 3, p_clean: float = 0.05, min_strength: float = 0.05,
                  device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> Recipe:
    """Draw a recipe: 1..max_channels distinct channels per sample (none with probability
    ``p_clean``), signs, operator variants, strengths in [min_strength, 1] and masks.

    Example:
        >>> r = random_recipe(4, 16, 16, torch.Generator().manual_seed(0))
        >>> r.labels().shape
        torch.Size([4, 8, 16, 16])
    """
    _check_options(max_channels, p_clean=p_clean, min_strength=min_strength)
    c = len(CHANNELS)
    count = 1 + (_rand((n,), generator) * max_channels).floor().long()
    count = torch.where(_rand((n,), generator) < p_clean, torch.zeros_like(count), count)
    order = _rand((n, c), generator).argsort(dim=1)
    rank = order.argsort(dim=1)
    chosen = rank < count[:, None]
    u_sign, u_var, u_t = _rand((n, c), generator), _rand((n, c), generator), _rand((n, c), generator)
    s = torch.where(u_sign < _P_NEG, -1, 1)  # every channel at once (one channel at a time: 8x the calls)
    sign = torch.where(chosen, s, 0)
    variant = torch.zeros(n, c, dtype=torch.long)
    for sg, k in ((1, _K_POS), (-1, _K_NEG)):  # the variant's draw for the sign drawn, 0 where it has none
        v = torch.minimum((u_var * k).floor().long(), k.long() - 1)
        variant = torch.where((s == sg) & (k > 0), v, variant)
    strength = torch.where(chosen, min_strength + (1 - min_strength) * u_t, 0.0)
    masks = random_masks(n * c, h, w, generator, keep=chosen.flatten(), device=device,
                         dtype=dtype).view(n, c, h, w)  # one call: cheaper
    return Recipe(strength.to(dtype), sign, variant, masks)


def _per_sample(scale: Tensor | float, n: int, signed: bool = False) -> Tensor:
    """``scale`` (a float, or one float per sample, in [0, 1], or [-1, 1] if ``signed``) as (N, 1), which
    broadcasts over the channels (:func:`~pixelperfect_loss._checks.check_strength`; (N, 1) accepted too)."""
    if isinstance(scale, Tensor):
        if not scale.is_floating_point():
            raise TypeError(f"scale: expected a float or a float tensor of shape ({n},), got dtype {scale.dtype}")
        if scale.shape == (n, 1):
            scale = scale[:, 0]
    return check_strength(scale, n, "scale", signed=signed)[:, None]


def apply_recipe(clean: Tensor, recipe: Recipe, generator: torch.Generator | None = None,
                 scale: Tensor | float = 1.0) -> Tensor:
    """Distort ``clean`` with ``recipe``, strengths multiplied by ``scale`` (a float or (N,)).

    A hand-built recipe is checked first: a ValueError names a field of the wrong shape or range, or an
    applied channel whose sign and variant name no operator of :data:`OPERATORS` (such a channel would
    leave the image untouched while its label says it was applied).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.rand(2, 3, 16, 16)
        >>> apply_recipe(x, random_recipe(2, 16, 16, g), g).shape
        torch.Size([2, 3, 16, 16])
    """
    clean = op.check_engine_images(clean, generator, "clean", check_range=True).contiguous()
    _check_recipe(recipe, clean)
    return _apply_recipe(clean, recipe, generator, scale)


def _check_recipe(recipe: object, clean: Tensor) -> None:
    """A recipe fit for ``clean`` (N, 3, H, W): fields of the documented shapes, strengths in [0, 1], signs in
    {-1, 0, 1}, and for every applied channel a sign and variant that name an operator of :data:`OPERATORS`
    (anything else would leave the image untouched while its label says otherwise)."""
    if not isinstance(recipe, Recipe):
        raise TypeError(f"recipe: expected a Recipe, got {type(recipe).__name__}")
    n, c = len(clean), len(CHANNELS)
    for name in ("strength", "sign", "variant", "masks"):
        v = getattr(recipe, name)
        want = (n, c, *clean.shape[-2:]) if name == "masks" else (n, c)
        if not isinstance(v, Tensor) or tuple(v.shape) != want:
            got = tuple(v.shape) if isinstance(v, Tensor) else type(v).__name__
            raise ValueError(f"recipe.{name}: expected a tensor of shape {want} for clean of shape "
                             f"{tuple(clean.shape)}, got {got}")
    for name in ("strength", "masks"):
        v = getattr(recipe, name)
        if not v.is_floating_point() or bool(((v < 0) | (v > 1) | torch.isnan(v)).any()):
            raise ValueError(f"recipe.{name}: expected float values in [0, 1]")
    if recipe.sign.is_floating_point() or recipe.variant.is_floating_point():
        raise TypeError("recipe.sign, recipe.variant: expected integer tensors")
    sign, variant = recipe.sign.cpu(), recipe.variant.cpu()
    if bool(((sign < -1) | (sign > 1)).any()):
        raise ValueError(f"recipe.sign: expected values in {{-1, 0, 1}}, got {sorted(set(sign.flatten().tolist()))}")
    k = torch.where(sign > 0, _K_POS.long(), torch.where(sign < 0, _K_NEG.long(), 1))
    bad = (sign != 0) & ((variant < 0) | (variant >= k))
    if bool(bad.any()):
        i, j = (int(v) for v in bad.nonzero()[0])
        key = (CHANNELS[j], int(sign[i, j]))
        raise ValueError(f"recipe: sample {i}, channel {key[0]!r} with sign {key[1]:+d} has variant "
                         f"{int(variant[i, j])}, but OPERATORS[{key}] has {len(OPERATORS.get(key, ()))} operator(s)")


def _apply_recipe(clean: Tensor, recipe: Recipe, generator: torch.Generator | None = None,
                  scale: Tensor | float = 1.0) -> Tensor:
    """:func:`apply_recipe` without its argument checks, for recipes the engine drew itself."""
    x = clean.clone()
    strength = (recipe.strength.to(x.device) * _per_sample(scale, len(x)).to(x.device)).to(x.dtype)
    signs, variants = recipe.sign.tolist(), recipe.variant.tolist()  # plain lists: cheap grouping
    masks = recipe.masks.to(x.device, x.dtype)
    for name in ORDER:
        i = INDEX[name]
        groups: dict[tuple[int, int], list[int]] = {}
        for n, (s, v) in enumerate(zip(signs, variants)):
            if s[i]:
                groups.setdefault((s[i], v[i]), []).append(n)
        for sg in (1, -1):
            for v, fn in enumerate(OPERATORS.get((name, sg), ())):
                if (sg, v) not in groups:
                    continue
                sel = torch.tensor(groups[sg, v], device=x.device)
                t = strength[sel, i]
                xs = x.index_select(0, sel)
                y = getattr(fn, "unchecked", fn)(xs, sg * t if name in TWO_SIDED else t, generator)  # args built valid
                m = masks[:, i:i + 1].index_select(0, sel)
                x.index_copy_(0, sel, torch.lerp(xs, y, m, out=y))  # exactly xs where m == 0, y where m == 1
    return x


def _check_engine_input(clean: object, generator: object, *, max_channels: int, **probabilities: float) -> Tensor:
    """The engine's argument checks: clean images (float32 or float64, at least MIN_SIZE pixels a side; gray
    replicated to RGB), a torch.Generator or None, 1 to 8 channels per sample, probabilities in [0, 1]."""
    clean = op.check_engine_images(clean, generator, "clean", check_range=True)
    _check_options(max_channels, **probabilities)
    return clean.contiguous()  # gray input: a real RGB copy, not a stride-0 view returned as the reference


def _check_options(max_channels: int, **fractions: float) -> None:
    """1 to 8 channels per sample; probabilities (and other fractions) in [0, 1]."""
    if isinstance(max_channels, bool) or not isinstance(max_channels, numbers.Integral) \
            or not 1 <= max_channels <= len(CHANNELS):
        raise ValueError(f"max_channels: expected an integer in [1, {len(CHANNELS)}], got {max_channels!r}")
    for name, p in fractions.items():
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
            raise ValueError(f"{name}: expected {'a probability' if name.startswith('p_') else 'a value'} in [0, 1], "
                             f"got {p!r}")


def make_triplets(clean: Tensor, generator: torch.Generator | None = None, *, p_swap: float = 0.5,
                  max_channels: int = 3, p_clean: float = 0.05) -> Triplets:
    """Make (reference, image, labels) training triplets from clean images (N, 3, H, W) in [0, 1].

    Each sample gets 1 to ``max_channels`` channels with independent masks. With probability
    ``p_swap`` the pair is swapped (reference = distorted, image = clean) and its labels negated,
    which is how "less noise", "fewer JPEG artefacts" and "sharper" arise.

    Example:
        >>> x = torch.rand(4, 3, 32, 32)
        >>> ref, img, lab = make_triplets(x, torch.Generator().manual_seed(0))
        >>> lab.shape, bool(lab.abs().max() <= 1)
        (torch.Size([4, 8, 32, 32]), True)
    """
    clean = _check_engine_input(clean, generator, max_channels=max_channels, p_swap=p_swap, p_clean=p_clean)
    n, _, h, w = clean.shape
    recipe = random_recipe(n, h, w, generator, max_channels=max_channels, p_clean=p_clean,
                           device=clean.device, dtype=clean.dtype)
    distorted = _apply_recipe(clean, recipe, generator)
    swap = _rand((n,), generator) < p_swap
    labels = recipe.labels(torch.where(swap, -1.0, 1.0)[:, None], in_place=True)  # negated where swapped
    idx = swap.nonzero().flatten().to(clean.device)  # exchange the swapped samples: cheaper than two full torch.where
    reference = clean.index_copy(0, idx, distorted.index_select(0, idx))
    return Triplets(reference, distorted.index_copy_(0, idx, clean.index_select(0, idx)), labels)


def make_ranked_sets(clean: Tensor, k: int, generator: torch.Generator | None = None, *,
                     max_channels: int = 2, p_other: float = 0.0) -> RankedSets:
    """One recipe per sample applied at k strictly growing strengths (j / k of the recipe's, j = 1..k).

    All versions share the channels, operators, masks and random draws (noise, angles), so that
    they differ only in strength; ``ranks`` are 1..k (the reference itself would be rank 0). Two
    versions can still coincide where an operator is discrete (pixelation's whole block sizes,
    quantisation's whole numbers of levels) or where a mask is zero everywhere (about one mask in
    4,000); identical images score alike, so such a pair gives RankNet no net gradient. And a JPEG
    error need not grow with every step of quality (2 of 320 sets of 5 and 8 versions at 64x64 were
    not in order of distance to the reference: one of them a zero mask, the other JPEG's last step; at
    steps of 0.005 in t the distance fell at 81 of 1,000 steps, by at most 1.5%, never at steps of 0.05:
    the quantisation tables are whole numbers). Pixelation with a larger block can land closer to the
    reference than a smaller one when its grid happens to fit the image (26 of 768 adjacent block sizes
    on 64x64 crops); the ranks follow the block size, as a viewer does. With
    probability ``p_other`` a set is made instead by one operator outside the eight channels
    (:mod:`.other`: fog, colour quantisation, pixelation, warping), with zero labels.

    Example:
        >>> s = make_ranked_sets(torch.rand(2, 3, 32, 32), 4, torch.Generator().manual_seed(0))
        >>> s.images.shape, s.ranks[0].tolist()
        (torch.Size([2, 4, 3, 32, 32]), [1, 2, 3, 4])
    """
    clean = _check_engine_input(clean, generator, max_channels=max_channels, p_other=p_other)
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 2:
        raise ValueError(f"k: expected an integer >= 2 (versions per set), got {k!r}")
    k = int(k)
    n, _, h, w = clean.shape
    recipe = random_recipe(n, h, w, generator, max_channels=max_channels, p_clean=0.0,
                           min_strength=0.3, device=clean.device, dtype=clean.dtype)
    other = _rand((n,), generator) < p_other
    which = (_rand((n,), generator) * len(OTHER_OPERATORS)).long().clamp(max=len(OTHER_OPERATORS) - 1)
    t_other = (0.3 + 0.7 * _rand((n,), generator)).to(clean.device, clean.dtype)
    seed = int(_rand((1,), generator).item() * 2**62)
    dev = generator.device if generator is not None else torch.device("cpu")
    images, labels = [], []
    for j in range(1, k + 1):
        g = torch.Generator(device=dev).manual_seed(seed)  # same random draws at every level
        x = _apply_recipe(clean, recipe, g, scale=j / k)
        lab = recipe.labels(scale=j / k)
        for o, fn in enumerate(OTHER_OPERATORS):
            sel = (other & (which == o)).nonzero().flatten().to(clean.device)
            if len(sel):
                x = x.index_copy(0, sel, fn(clean[sel], t_other[sel] * j / k,
                                            torch.Generator(device=dev).manual_seed(seed + 1 + o)))
                lab = lab.index_fill(0, sel, 0.0)
        images.append(x)
        labels.append(lab)
    ranks = torch.arange(1, k + 1, device=clean.device).expand(n, k)
    return RankedSets(clean, torch.stack(images, 1), torch.stack(labels, 1), ranks, other.to(clean.device))
