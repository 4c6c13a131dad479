"""Numerics: low precision, autocast, memory layout, determinism, compile, fuzzing."""

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pixelperfect_loss import PixelPerfectLoss, distortion_maps
from pixelperfect_loss.engine import operators as op


@pytest.fixture(scope="module")
def loss_fn():
    return PixelPerfectLoss(reduction="none")


@pytest.fixture(scope="module")
def pair(photos=None):
    from pixelperfect_loss.data import RandomCrops, embedded_images

    ref = RandomCrops(embedded_images(), size=64, seed=5).batch(0, 2)
    return ref, op.gaussian_blur(ref, torch.full((2,), 0.5))


@pytest.mark.parametrize("dtype,rtol", [(torch.float16, 0.02), (torch.bfloat16, 0.10)])
def test_low_precision_inputs_agree_with_float32(loss_fn, pair, dtype, rtol):
    """The network runs in float32 whatever the input dtype: on the same (rounded) pixel values the
    result matches float32 up to the output's rounding; against the unrounded float32 images it agrees
    within the stated tolerance (float16 2%, bfloat16 10%: bfloat16 keeps 8 bits of mantissa, so the
    rounding of the pixels is itself a small distortion)."""
    ref, img = pair
    got = loss_fn(img.to(dtype), ref.to(dtype))
    assert got.dtype == dtype
    same_pixels = loss_fn(img.to(dtype).float(), ref.to(dtype).float())
    torch.testing.assert_close(got.float(), same_pixels, rtol=torch.finfo(dtype).eps, atol=0)
    torch.testing.assert_close(got.float(), loss_fn(img, ref), rtol=rtol, atol=1e-3)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_loss_and_metric_cast_to_16_bits_stay_finite(pair, dtype):
    """A module cast with .half() / .bfloat16() runs the network in 16 bits: its fixed features are
    computed in float32 (their variances, E[x^2] - E[x]^2, came out below -1e-5 in 16 bits and their
    log was NaN), so the loss is 0 at equality, finite, and near the float32 loss; an identical image
    still scores exactly 0."""
    from pixelperfect_loss.metric import PixelPerfect

    ref, img = pair
    fn = PixelPerfectLoss(reduction="none").to(dtype)
    assert torch.equal(fn(ref, ref), torch.zeros(2))
    got = fn(img, ref)
    assert torch.isfinite(got).all()
    rtol = 0.01 if dtype == torch.float16 else 0.06  # measured: 0.1% and 3.7% (bfloat16 keeps 8 bits)
    torch.testing.assert_close(got.float(), PixelPerfectLoss(reduction="none")(img, ref), rtol=rtol, atol=0)
    pp = PixelPerfect().to(dtype)
    assert torch.equal(pp.score(ref, ref), torch.zeros(2))
    assert torch.isfinite(pp.score(ref, img)).all() and (pp.score(ref, img) < 0).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_metric_scores_an_identical_low_precision_image_exactly_zero(pair, dtype):
    """The score's features are computed in at least float32 and cast at the end (in float16 the
    generic features' smooth |x| is not 0 at 0: an identical image scored -0.11)."""
    from pixelperfect_loss.metric import PixelPerfect

    ref, img = pair
    pp = PixelPerfect()
    s = pp.score(ref.to(dtype), ref.to(dtype))
    assert s.dtype == dtype and torch.equal(s, torch.zeros(2, dtype=dtype))
    torch.testing.assert_close(pp.score(ref.to(dtype), img.to(dtype)).float(),
                               pp.score(ref.to(dtype).float(), img.to(dtype).float()), rtol=torch.finfo(dtype).eps, atol=0)
    assert pp.report(ref.to(dtype), ref.to(dtype))[0]["score"] == 0.0


def test_autocast_agrees_with_float32(loss_fn, pair):
    ref, img = pair
    want = loss_fn(img, ref)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = loss_fn(img, ref)
    torch.testing.assert_close(got.float(), want, rtol=0.015, atol=1e-3)  # measured: 0.004 on 0.7


def test_channels_last_and_determinism(loss_fn, pair):
    ref, img = pair
    a = loss_fn(img, ref)
    b = loss_fn(img.contiguous(memory_format=torch.channels_last), ref.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)  # other conv kernels: float32 rounding only
    assert torch.equal(loss_fn(img, ref), a)
    assert torch.equal(distortion_maps(ref, img), distortion_maps(ref, img))


def test_to_moves_every_buffer_and_parameter(pair):
    fn = PixelPerfectLoss().to(torch.float64)
    assert all(t.dtype == torch.float64 for t in list(fn.parameters()) + list(fn.buffers()))
    ref, img = pair
    assert fn(img.double(), ref.double()).dtype == torch.float64


def test_torch_compile_gives_the_same_values(loss_fn, pair):
    ref, img = pair
    want = loss_fn(img, ref)  # eager, outside the try: a bug of ours must fail here, not skip
    try:
        got = torch.compile(loss_fn)(img, ref)
    except Exception as exc:
        if not type(exc).__module__.startswith(("torch._dynamo", "torch._inductor")):
            raise
        pytest.skip(f"torch.compile unavailable on this machine: {type(exc).__name__}: {exc}"[:300])
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.uint8, torch.int64, torch.bool]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(0, 2), c=st.sampled_from([1, 2, 3, 4]), h=st.integers(1, 40), w=st.integers(1, 40),
       dtype=st.sampled_from(DTYPES), kind=st.sampled_from(["uniform", "range", "nan", "inf", "const"]),
       shape_mismatch=st.booleans())
def test_fuzz_public_api_returns_finite_or_raises_documented_errors(loss_fn, n, c, h, w, dtype, kind, shape_mismatch):
    base = torch.rand(n, c, h, w, dtype=torch.float64)
    if kind == "range":
        base = base * 3 - 1
    elif kind == "nan" and base.numel():
        base.view(-1)[0] = float("nan")
    elif kind == "inf" and base.numel():
        base.view(-1)[-1] = float("inf")
    elif kind == "const":
        base = torch.full_like(base, 0.5)
    x = base.to(dtype)
    y = (x if not shape_mismatch else x[..., : max(1, h - 1), :])
    valid = (dtype.is_floating_point and n >= 1 and c in (1, 3) and h >= 16 and w >= 16 and kind in ("uniform", "const")
             and not shape_mismatch)
    if not valid:  # a documented error, naming the argument
        with pytest.raises((ValueError, TypeError), match="^(output|target)"):
            loss_fn(x, y)
        return
    out = loss_fn(x, y)
    assert out.shape == (n,) and torch.isfinite(out.float()).all()


def test_reductions_stay_in_float32_for_half_inputs(loss_fn, pair, monkeypatch):
    import pixelperfect_loss.loss as lossmod

    ref, img = pair
    seen = []
    real = lossmod.loss_from_maps

    def spy(maps, *args, **kw):
        seen.append(maps.dtype)
        return real(maps, *args, **kw)

    monkeypatch.setattr(lossmod, "loss_from_maps", spy)
    out = loss_fn(img.half(), ref.half())
    assert seen == [torch.float32] and out.dtype == torch.float16
