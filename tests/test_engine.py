"""The synthetic distortion engine: operators, masks, triplets, ranked sets."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from pixelperfect_loss.channels import CHANNELS, INDEX
from pixelperfect_loss.engine import (OPERATORS, Recipe, apply_recipe, luma, make_ranked_sets, make_triplets, random_recipe,
                                      random_masks)
from pixelperfect_loss.engine import operators as op
from pixelperfect_loss.engine.recipes import TWO_SIDED

DTYPES = [torch.float32, torch.float64]

ALL_OPS = sorted({(fn.__name__, fn) for fns in OPERATORS.values() for fn in fns}, key=lambda p: p[0])
SIGNED_OPS = [(ch, sg, fn) for (ch, sg), fns in OPERATORS.items() for fn in fns]


def _ids(items):
    return [f"{c}{'+' if s > 0 else '-'}-{f.__name__}" for c, s, f in items]


def _run(fn, x, t, seed=0):
    return fn(x, t, torch.Generator().manual_seed(seed))


def _signed(channel, sign, t):
    """The operator's argument for strength t in direction sign: the two-sided (tone and colour) operators
    take the sign in t, the one-sided ones (blur, unsharp mask, noise, jpeg) only t >= 0, as in the engine."""
    return sign * t if channel in TWO_SIDED else t


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,fn", ALL_OPS, ids=[n for n, _ in ALL_OPS])
def test_zero_intensity_is_identity(name, fn, dtype, photos):
    x = photos.to(dtype)
    assert torch.equal(_run(fn, x, torch.zeros(len(x), dtype=dtype)), x)


@pytest.mark.parametrize("name,fn", ALL_OPS, ids=[n for n, _ in ALL_OPS])
def test_zero_intensity_is_identity_within_a_mixed_batch(name, fn, photos):
    t = torch.tensor([0.0, 0.7, 0.0, 0.4])
    y = _run(fn, photos, t)
    zero = t == 0
    assert torch.equal(y[zero], photos[zero]) and (y[~zero] - photos[~zero]).abs().amax() > 1e-3


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channel,sign,fn", SIGNED_OPS, ids=_ids(SIGNED_OPS))
def test_full_intensity_finite_in_range_and_dtype(channel, sign, fn, dtype, photos):
    x = photos.to(dtype)
    y = _run(fn, x, torch.full((len(x),), float(_signed(channel, sign, 1.0)), dtype=dtype))
    assert y.dtype == dtype and y.shape == x.shape
    assert torch.isfinite(y).all() and y.min() >= 0 and y.max() <= 1
    assert (y - x).abs().mean() > 1e-3


def _hf_energy(x, per_image=False):
    y = luma(x)
    e = ((y - F.avg_pool2d(F.pad(y, (1, 1, 1, 1), mode="replicate"), 3, 1)) ** 2).mean((1, 2, 3))
    return e if per_image else float(e.mean())


def _rgb_hf_energy(x, per_image=False):
    """High-frequency energy of R, G and B: chroma noise leaves luma (and so _hf_energy) as it was."""
    e = ((x - F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, 1)) ** 2).mean((1, 2, 3))
    return e if per_image else float(e.mean())


def _chroma(x):
    return float((x.amax(1) - x.amin(1)).mean())


def _blockiness(x):
    y = luma(x)[:, 0]
    dx = (y[..., 1:] - y[..., :-1]).abs()
    at_edge = dx[..., 7::8].mean()
    inside = torch.cat([dx[..., k::8] for k in range(7)], -1).mean()
    return float(at_edge / inside)


MEASURES = {
    "blur": lambda x: -_hf_energy(x),
    "noise": _rgb_hf_energy,
    "jpeg": _blockiness,
    "brightness": lambda x: float(luma(x).mean()),
    "contrast": lambda x: float(luma(x).std()),
    "saturation": _chroma,
    "warmth": lambda x: float((x[:, 0] - x[:, 2]).mean()),
    "tint": lambda x: float((0.5 * (x[:, 0] + x[:, 2]) - x[:, 1]).mean()),
}


@pytest.mark.parametrize("channel,sign,fn", SIGNED_OPS, ids=_ids(SIGNED_OPS))
def test_distance_grows_with_intensity_for_every_image(channel, sign, fn, photos):
    """Per image (not on the batch's mean), at steps of 0.1 from 0 to 1."""
    d = torch.stack([(_run(fn, photos, torch.full((len(photos),), _signed(channel, sign, t / 10)), seed=5)
                      - photos).abs().mean((1, 2, 3)) for t in range(11)], 1)
    assert (d[:, 1:] > d[:, :-1]).all(), d


def test_downup_blur_grows_at_fine_steps_and_is_strongest_at_one(photos):
    """A resize by the fractional factor itself blurred less at whole factors (t = 1, a factor of 4, less
    than t = 0.9); the blend of whole-factor down-ups grows at steps of 0.01, to float rounding."""
    from pixelperfect_loss.engine.operators import downup_blur

    d = torch.stack([(downup_blur(photos, torch.full((4,), t / 100), torch.Generator().manual_seed(5))
                      - photos).abs().mean((1, 2, 3)) for t in range(101)], 1)
    assert (d[:, 1:] >= d[:, :-1] * (1 - 3e-3)).all()
    assert (d[:, 100] > d[:, 90]).all() and (d[:, 10::10] > d[:, 0:-10:10]).all()


DETAIL_OPS = [(c, s, f) for c, s, f in SIGNED_OPS if c in ("blur", "noise")]


@pytest.mark.parametrize("channel,sign,fn", DETAIL_OPS, ids=_ids(DETAIL_OPS))
def test_blur_and_noise_directions_on_every_image(channel, sign, fn, photos):
    """Blur + lowers the high frequencies of every image, unsharp masking and noise raise them (chroma
    noise those of R, G and B: it keeps luma)."""
    y = _run(fn, photos, torch.full((len(photos),), _signed(channel, sign, 0.6)))
    e = _hf_energy if fn.__name__ != "chroma_noise" else _rgb_hf_energy
    change = e(y, per_image=True) - e(photos, per_image=True)
    assert ((-change if channel == "blur" else change) * sign > 0).all(), change


@pytest.mark.parametrize("channel,sign,fn", SIGNED_OPS, ids=_ids(SIGNED_OPS))
def test_direction_of_every_operator(channel, sign, fn, photos):
    """E.g. brightness + raises mean luma, contrast - lowers its std, blur + lowers high frequencies."""
    measure = MEASURES[channel]
    y = _run(fn, photos, torch.full((len(photos),), _signed(channel, sign, 0.6)))
    assert sign * (measure(y) - measure(photos)) > 0


@pytest.mark.parametrize("fn", [op.contrast_linear, op.contrast_curve], ids=lambda f: f.__name__)
@pytest.mark.parametrize("exposure", ["dark", "normal", "bright"])
@pytest.mark.parametrize("t", [-0.6, -0.3, 0.3, 0.6, 1.0])
def test_contrast_direction_on_dark_and_bright_photos(fn, exposure, t, photos):
    """A curve about mid grey flattened the content of a dark photo when asked for more contrast: the
    label said "+" where the luma std fell. Per image, at three exposures."""
    x = {"dark": 0.3 * photos, "normal": photos, "bright": 0.7 + 0.3 * photos}[exposure]
    y = fn(x, torch.full((len(x),), t))
    change = luma(y).std((1, 2, 3)) - luma(x).std((1, 2, 3))
    assert (change * t > 0).all(), change


@pytest.mark.parametrize("h,w", [(48, 40), (160, 136)])  # rendered at full and at 1/4 resolution
def test_masks_range_and_exact_zero_and_one(h, w):
    m = random_masks(64, h, w, torch.Generator().manual_seed(1))
    assert m.shape == (64, 1, h, w) and m.min() >= 0 and m.max() <= 1
    assert (m == 0).any() and (m == 1).any()
    assert (m.std(dim=(1, 2, 3)) > 0.05).sum() >= 32  # spatially varying for most samples (43 of 64 measured)


@pytest.mark.parametrize("dtype", DTYPES)
def test_triplets_shapes_labels_and_untouched_where_unlabelled(dtype, photos):
    x = photos.to(dtype).repeat(4, 1, 1, 1)
    ref, img, lab = make_triplets(x, torch.Generator().manual_seed(0))
    assert ref.shape == img.shape == x.shape and lab.shape == (16, 8, 64, 64)
    assert ref.dtype == img.dtype == lab.dtype == dtype
    assert lab.abs().max() <= 1 and torch.isfinite(img).all()
    zero = (lab == 0).all(1, keepdim=True).expand_as(ref)
    assert zero.any()
    assert torch.equal(img[zero], ref[zero])  # bit for bit: lerp with a zero mask returns the input
    assert ((lab != 0).flatten(2).any(2).sum(1) >= 2).any()  # several channels per sample occur


def test_triplets_same_seed_same_output(photos):
    a = make_triplets(photos, torch.Generator().manual_seed(7))
    b = make_triplets(photos, torch.Generator().manual_seed(7))
    c = make_triplets(photos, torch.Generator().manual_seed(8))
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert not torch.equal(a.labels, c.labels)


def test_triplets_contain_both_orders_with_negated_labels(photos):
    x = photos.repeat(8, 1, 1, 1)
    ref, img, lab = make_triplets(x, torch.Generator().manual_seed(0), p_swap=0.5)
    swapped = (ref != x).flatten(1).any(1)
    assert swapped.any() and (~swapped).any()
    # a swapped sample's reference is the distorted one: the image is the clean photo
    assert torch.equal(img[swapped], x[swapped])
    # noise and jpeg only appear negative through swapping
    for c in ("noise", "jpeg"):
        neg = (lab[:, INDEX[c]] < 0).flatten(1).any(1)
        assert (neg <= swapped).all()


def _one_channel(photos, channel, sign, t=0.7):
    n, _, h, w = photos.shape
    strength = torch.zeros(n, 8)
    strength[:, INDEX[channel]] = t
    s = torch.zeros(n, 8, dtype=torch.long)
    s[:, INDEX[channel]] = sign
    return Recipe(strength, s, torch.zeros(n, 8, dtype=torch.long), torch.ones(n, 8, h, w))


@pytest.mark.parametrize("channel", [c for c in CHANNELS if c in TWO_SIDED])
def test_label_sign_matches_direction(channel, photos):
    for sign in (1, -1):
        r = _one_channel(photos, channel, sign)
        y = apply_recipe(photos, r, torch.Generator().manual_seed(0))
        assert sign * (MEASURES[channel](y) - MEASURES[channel](photos)) > 0
        assert torch.all(torch.sign(r.labels()[:, INDEX[channel]]) == sign)


def test_masked_application_leaves_outside_untouched(photos):
    r = _one_channel(photos, "noise", 1, t=1.0)
    r.masks[..., :32] = 0
    y = apply_recipe(photos, r, torch.Generator().manual_seed(0))
    assert torch.equal(y[..., :32], photos[..., :32])
    assert (y[..., 32:] - photos[..., 32:]).abs().mean() > 0.02


@pytest.mark.parametrize("dtype", DTYPES)
def test_ranked_sets_strictly_growing(dtype, photos):
    s = make_ranked_sets(photos.to(dtype), 5, torch.Generator().manual_seed(0))
    assert s.images.shape == (4, 5, 3, 64, 64) and s.labels.shape == (4, 5, 8, 64, 64)
    assert s.ranks.tolist() == [[1, 2, 3, 4, 5]] * 4
    d = (s.images - s.reference[:, None]).abs().mean((2, 3, 4))
    assert (d[:, 1:] > d[:, :-1]).all(), d
    lab = s.labels.abs().amax((2, 3, 4))
    assert (lab[:, 1:] > lab[:, :-1]).all()


def test_swapped_pairs_carry_exactly_negated_labels(photos):
    """The swap draw does not depend on p_swap, so p_swap = 0 and 1 give the same recipes: the pairs
    exchanged and the labels negated, bit for bit."""
    x = photos.repeat(2, 1, 1, 1)
    a = make_triplets(x, torch.Generator().manual_seed(3), p_swap=0.0)
    b = make_triplets(x, torch.Generator().manual_seed(3), p_swap=1.0)
    assert torch.equal(a.reference, x) and torch.equal(b.image, x)
    assert torch.equal(a.image, b.reference) and torch.equal(b.labels, -a.labels) and a.labels.abs().sum() > 0


@pytest.mark.parametrize("name,fn", ALL_OPS, ids=[n for n, _ in ALL_OPS])
def test_operators_check_their_arguments(name, fn, photos):
    signed = any(fn in fns for (c, _), fns in OPERATORS.items() if c in TWO_SIDED)
    assert torch.equal(_run(fn, photos, 0.5), _run(fn, photos, torch.full((4,), 0.5)))  # a float: every sample's t
    y = fn(photos, torch.full((4,), 0.5, dtype=torch.float64))
    assert y.dtype == torch.float32  # t follows x's dtype, not the other way round
    with pytest.raises(ValueError, match=r"t: expected shape \(4,\)"):
        fn(photos, torch.full((2,), 0.5))
    with pytest.raises(ValueError, match=r"t: expected values in \[-1, 1\]" if signed else r"t: expected values in \[0, 1\]"):
        fn(photos, torch.full((4,), -0.5 if not signed else -1.5))
    with pytest.raises(TypeError, match="t: expected a float or a tensor"):
        fn(photos, "0.5")
    with pytest.raises(TypeError, match="x: expected float32 or float64"):
        fn(photos.half(), 0.5)
    assert _run(fn, photos.mean(1, keepdim=True), 0.5).shape == photos.shape  # gray: replicated to RGB
    with pytest.raises(ValueError, match=r"x: expected 1 \(gray\) or 3 \(RGB\) channels"):
        fn(photos[:, :2], 0.5)
    with pytest.raises(ValueError, match="x: expected height and width >= 3"):
        fn(photos[..., :2], 0.5)
    with pytest.raises(TypeError, match="generator: expected a torch.Generator"):
        fn(photos, 0.5, 0)


@pytest.mark.parametrize("size", [(3, 3), (3, 40), (17, 23)])
def test_engine_runs_on_small_and_odd_sizes(size):
    x = torch.rand(16, 3, *size)
    for seed in range(4):
        ref, img, lab = make_triplets(x, torch.Generator().manual_seed(seed))
        assert torch.isfinite(img).all() and lab.shape == (16, 8, *size)
    s = make_ranked_sets(x, 3, torch.Generator().manual_seed(0), p_other=0.5)
    assert torch.isfinite(s.images).all()


def test_ranked_sets_of_a_gray_batch_return_a_real_rgb_reference(photos):
    import numpy as np

    gray = photos.mean(1, keepdim=True)
    s = make_ranked_sets(gray, np.int64(2), torch.Generator().manual_seed(0))  # numpy integers are integers
    assert s.reference.shape == (4, 3, 64, 64) and s.reference.is_contiguous()
    assert s.reference.data_ptr() != gray.data_ptr() and torch.equal(s.reference, gray.expand(4, 3, 64, 64))


@pytest.mark.parametrize("call,err,match", [
    (lambda x: make_triplets(x, 0), TypeError, "generator: expected a torch.Generator"),
    (lambda x: make_ranked_sets(x, 3, "seed"), TypeError, "generator: expected a torch.Generator"),
    (lambda x: make_triplets(x.half()), TypeError, "clean: expected float32 or float64"),
    (lambda x: make_triplets(x[..., :2, :]), ValueError, "clean: expected height and width >= 3"),
    (lambda x: make_triplets(x, max_channels=0), ValueError, r"max_channels: expected an integer in \[1, 8\]"),
    (lambda x: make_triplets(x, max_channels=9), ValueError, "max_channels"),
    (lambda x: make_triplets(x, p_swap=5), ValueError, r"p_swap: expected a probability in \[0, 1\]"),
    (lambda x: make_triplets(x, p_clean=-1), ValueError, "p_clean: expected a probability"),
    (lambda x: make_ranked_sets(x, 3, p_other=2), ValueError, "p_other: expected a probability"),
    (lambda x: random_recipe(4, 16, 16, max_channels=0), ValueError, "max_channels: expected an integer"),  # drew 1
    (lambda x: random_recipe(4, 16, 16, min_strength=2.0), ValueError, r"min_strength: expected a value in \[0, 1\]"),
    (lambda x: make_ranked_sets(x, 2.5), ValueError, "k: expected an integer >= 2"),
    (lambda x: op.gaussian_blur(x * float("nan"), 0.5), ValueError, "x: contains NaN"),  # gave NaN, silently
    (lambda x: op.brightness_gain(x * 2 - 0.5, 0.5), ValueError, r"x: expected values in \[0, 1\]"),
])
def test_engine_arguments_are_checked(call, err, match, photos):
    with pytest.raises(err, match=match):
        call(photos)


def test_bad_input_errors(photos):
    with pytest.raises(TypeError, match="clean"):
        make_triplets((photos * 255).to(torch.uint8))
    with pytest.raises(ValueError, match="clean"):
        make_triplets(photos[0])
    with pytest.raises(ValueError, match=r"^clean: expected values in \[0, 1\]"):
        make_triplets(photos * 2 - 1)
    with pytest.raises(ValueError, match="k:"):
        make_ranked_sets(photos, 1)


@pytest.mark.parametrize("fn", __import__("pixelperfect_loss.engine.other", fromlist=["x"]).OTHER_OPERATORS,
                         ids=lambda f: f.__name__)
def test_other_operators_identity_range_and_monotone(fn, photos):
    assert torch.equal(_run(fn, photos, torch.zeros(4)), photos)
    dists = []
    for t in (0.25, 0.5, 1.0):
        y = _run(fn, photos, torch.full((4,), t), seed=2)
        assert y.min() >= 0 and y.max() <= 1 and torch.isfinite(y).all()
        dists.append(float((y - photos).abs().mean()))
    assert dists[0] < dists[1] < dists[2], dists


def test_ranked_sets_with_other_operators(photos):
    s = make_ranked_sets(photos.repeat(2, 1, 1, 1), 3, torch.Generator().manual_seed(0), p_other=0.5)
    assert s.other.any() and (~s.other).any()
    assert (s.labels[s.other] == 0).all() and (s.labels[~s.other] != 0).any()
    assert s.images.min() >= 0 and s.images.max() <= 1


@pytest.mark.parametrize("quality", [10, 50, 90])
def test_jpeg_codec_matches_an_independent_encoder(quality, photos):
    """The engine's JPEG is much closer to Pillow's (libjpeg) round trip than to the clean image."""
    import io

    import numpy as np
    from PIL import Image

    from pixelperfect_loss.engine.operators import jpeg_codec

    x = (photos[:2] * 255).round() / 255
    ref = []
    for im in x:
        buf = io.BytesIO()
        Image.fromarray((im.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(buf, "JPEG", quality=quality)
        ref.append(torch.from_numpy(np.asarray(Image.open(buf)).astype(np.float32) / 255).permute(2, 0, 1))
    pil = torch.stack(ref)
    ours = jpeg_codec(x, torch.full((2,), float(quality)))
    err_ours, err_clean = ((ours - pil) ** 2).mean(), ((x - pil) ** 2).mean()
    assert err_ours < err_clean / 6, (float(err_ours), float(err_clean))  # measured: 7.7 to 22 times


def test_jpeg_codec_keeps_odd_sizes_and_gets_worse_with_lower_quality():
    from pixelperfect_loss.engine.operators import jpeg_codec

    x = torch.rand(1, 3, 21, 35, generator=torch.Generator().manual_seed(0)).repeat(3, 1, 1, 1)
    y = jpeg_codec(x, torch.tensor([90.0, 40.0, 5.0]))
    err = (y - x).abs().mean((1, 2, 3))
    assert y.shape == x.shape and bool((err[:-1] < err[1:]).all())


@pytest.mark.parametrize("dtype", DTYPES)
def test_jpeg_chroma_means_are_avg_pool2d_to_the_bit(dtype):
    """The codec's 2x2 chroma means replace F.avg_pool2d (for speed) without changing a single value."""
    from pixelperfect_loss.engine.operators import _means2x2

    x = torch.randn(3, 2, 48, 80, generator=torch.Generator().manual_seed(0), dtype=dtype) * 128
    assert torch.equal(_means2x2(x), F.avg_pool2d(x, 2))


def test_codec_constants_are_made_once_per_device_and_dtype():
    from pixelperfect_loss.engine.operators import _dct_matrix

    a, b = _dct_matrix(torch.zeros(1)), _dct_matrix(torch.zeros(1, dtype=torch.float64))
    assert a is _dct_matrix(torch.ones(2)) and b.dtype == torch.float64
    assert torch.allclose(a @ a.T, torch.eye(64), atol=1e-5)  # orthonormal: the codec's transform is invertible


@pytest.mark.parametrize("dtype", DTYPES)
def test_saturation_hsv_equals_the_hsv_round_trip(dtype, photos):
    """The closed form (V - k (V - x), k capped at S = 1) is kornia's rgb -> hsv, S x 2^(1.5 t), hsv -> rgb."""
    import kornia

    from pixelperfect_loss.engine.operators import saturation_hsv

    x = photos.to(dtype)
    x[0, :, :6, :6] = 0.4  # grey: no hue, must stay grey
    x[1, :, :6, :6] = 0.0  # black
    t = torch.tensor([-1.0, -0.3, 0.5, 1.0], dtype=dtype)
    hsv = kornia.color.rgb_to_hsv(x)
    s = (hsv[:, 1:2] * torch.exp2(1.5 * t.view(-1, 1, 1, 1))).clamp(0, 1)
    want = kornia.color.hsv_to_rgb(torch.cat([hsv[:, :1], s, hsv[:, 2:]], 1)).clamp(0, 1)
    got = saturation_hsv(x, t)
    assert got.dtype == dtype
    assert torch.allclose(got, want, atol=1e-5 if dtype == torch.float32 else 1e-7)
    assert (got[0, :, :6, :6] == 0.4).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_chroma_noise_keeps_luma_and_matches_the_ycbcr_round_trip(dtype, photos):
    import kornia

    from pixelperfect_loss.engine.operators import _correlate, chroma_noise

    x = photos.to(dtype) * 0.6 + 0.2  # away from the clamp, so luma is kept exactly
    t = torch.tensor([0.2, 0.5, 0.8, 1.0], dtype=dtype)
    got = chroma_noise(x, t, torch.Generator().manual_seed(7))
    nz = torch.randn((4, 2, 64, 64), generator=torch.Generator().manual_seed(7), dtype=dtype)
    blurred = kornia.filters.gaussian_blur2d(nz, (5, 5), (0.7, 0.7))
    assert torch.allclose(_correlate(nz), blurred, atol=1e-6)
    ycc = kornia.color.rgb_to_ycbcr(x)
    ycc = torch.cat([ycc[:, :1], ycc[:, 1:] + 0.15 * t.view(-1, 1, 1, 1) * blurred / 0.4], 1)
    want = kornia.color.ycbcr_to_rgb(ycc).clamp(0, 1)
    tol = 1e-5 if dtype == torch.float32 else 1e-9
    assert torch.allclose(got, want, atol=tol)
    inside = ((want > 0) & (want < 1)).all(1, keepdim=True)
    assert torch.allclose(luma(got)[inside], luma(x)[inside], atol=tol)


def test_apply_recipe_scale_is_per_sample(photos):
    """A (N,) scale multiplies each sample's strengths (it used to broadcast over the channels instead)."""
    x = photos.repeat(2, 1, 1, 1)
    recipe = random_recipe(8, 64, 64, torch.Generator().manual_seed(0), p_clean=0.0)
    scale = torch.tensor([1.0, 0.0, 0.5, 0.0, 1.0, 0.0, 0.25, 0.0])
    y = apply_recipe(x, recipe, torch.Generator().manual_seed(1), scale=scale)
    lab = recipe.labels(scale)
    changed = (y != x).flatten(1).any(1)
    assert changed.tolist() == (scale > 0).tolist()
    assert torch.equal(lab.flatten(1).abs().amax(1) > 0, scale > 0)
    for bad, err in [(torch.zeros(3), r"shape \(8,\)"), (2.0, r"values in \[0, 1\]")]:
        with pytest.raises(ValueError, match="scale: expected .*" + err):
            apply_recipe(x, recipe, None, scale=bad)


def test_apply_recipe_refuses_a_recipe_whose_labels_would_lie(photos):
    """A hand-built recipe naming no operator (noise made "less", a variant past the list) used to leave the
    image untouched while its labels said the channel was applied; now each is a ValueError naming the field."""
    good = _one_channel(photos, "noise", 1)
    assert not torch.equal(apply_recipe(photos, good, torch.Generator().manual_seed(0)), photos)
    no_operator = _one_channel(photos, "noise", -1)  # OPERATORS has no ("noise", -1)
    past_the_list = _one_channel(photos, "blur", 1)
    past_the_list.variant[:, INDEX["blur"]] = len(OPERATORS["blur", 1])
    for bad, match in [(no_operator, r"channel 'noise' with sign -1 has variant 0, but OPERATORS\[\('noise', -1\)\] "
                                      r"has 0 operator"),
                       (past_the_list, r"channel 'blur' with sign \+1 has variant 4"),
                       (dataclasses.replace(good, sign=good.sign * 2), r"recipe.sign: expected values in \{-1, 0, 1\}"),
                       (dataclasses.replace(good, strength=good.strength * 2), r"recipe.strength: expected float values"),
                       (dataclasses.replace(good, masks=good.masks[:, :, :8]), r"recipe.masks: expected a tensor of shape"),
                       (dataclasses.replace(good, strength=good.strength[:2]), r"recipe.strength: expected .*\(4, 8\)")]:
        with pytest.raises(ValueError, match=match):
            apply_recipe(photos, bad, None)
    with pytest.raises(TypeError, match="recipe.sign, recipe.variant: expected integer"):
        apply_recipe(photos, dataclasses.replace(good, sign=good.sign.float()), None)
    with pytest.raises(TypeError, match="recipe: expected a Recipe"):
        apply_recipe(photos, (good.strength, good.sign, good.variant, good.masks), None)


def test_jpeg_codec_checks_its_quality(photos):
    from pixelperfect_loss.engine.operators import jpeg_codec

    assert torch.equal(jpeg_codec(photos, 50), jpeg_codec(photos, torch.full((4,), 50.0)))
    for bad, err, match in [(torch.tensor([50.0]), ValueError, r"shape \(4,\)"), (0.5, ValueError, r"\[1, 100\]"),
                            (150, ValueError, r"\[1, 100\]"), ("high", TypeError, "a number or a tensor")]:
        with pytest.raises(err, match="quality: expected .*" + match):
            jpeg_codec(photos, bad)


def test_a_samples_blur_does_not_depend_on_its_batch(photos):
    """The gaussian's support came from the batch's largest sigma (2e-4 at 128 px), and a small image's padding
    switched to replicate when a partner's kernel outgrew it (0.19 at 16 px)."""
    for x in (photos.double(), photos[:, :, :16, :16].double()):
        for fn in (op.gaussian_blur, op.defocus_blur, op.unsharp_mask):
            alone = fn(x[:1], torch.tensor([0.3]), torch.Generator().manual_seed(0))
            paired = fn(x[:2], torch.tensor([0.3, 1.0]), torch.Generator().manual_seed(0))[:1]
            torch.testing.assert_close(alone, paired, atol=1e-12, rtol=0)
