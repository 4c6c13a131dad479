"""Every public entry point rejects bad input with a TypeError / ValueError naming the argument."""

import pytest
import torch

from pixelperfect_loss import PixelPerfect, PixelPerfectLoss, distortion_maps, pixelperfect_loss


@pytest.fixture(scope="module")
def entry_points():
    pp = PixelPerfect()
    loss_fn = PixelPerfectLoss()
    return {
        "distortion_maps": (distortion_maps, ("reference", "image")),
        "pixelperfect_loss": (lambda r, i: pixelperfect_loss(i, r), ("target", "output")),
        "PixelPerfectLoss": (lambda r, i: loss_fn(i, r), ("target", "output")),
        "PixelPerfectLoss.maps": (lambda r, i: loss_fn.maps(i, r), ("target", "output")),
        "PixelPerfect.maps": (pp.maps, ("reference", "image")),
        "PixelPerfect.score": (pp.score, ("reference", "image")),
        "PixelPerfect.report": (pp.report, ("reference", "image")),
        "PixelPerfect.compare": (lambda r, i: pp.compare(r, i, i), ("reference", "a")),
        "PixelPerfect.rank": (lambda r, i: pp.rank(r, [i]), ("reference", "images[0]")),
    }


GOOD = torch.rand(1, 3, 32, 32)
CASES = {
    "3 dimensions": (GOOD[0], ValueError, "expected shape"),
    "uint8": ((GOOD * 255).to(torch.uint8), TypeError, "floating-point"),
    "out of range": (GOOD * 2 - 0.5, ValueError, r"values in \[0, 1\]"),
    "NaN": (torch.full_like(GOOD, float("nan")), ValueError, "NaN"),
    "Inf": (torch.full_like(GOOD, float("inf")), ValueError, "NaN or Inf"),
    "too small": (GOOD[..., :15, :15], ValueError, ">= 16"),
    "4 channels": (torch.rand(1, 4, 32, 32), ValueError, "1 \\(gray\\) or 3"),
    "empty batch": (GOOD[:0], ValueError, "non-empty"),
    "not a tensor": ([[0.5]], TypeError, "torch.Tensor"),
}
NAMES = ["distortion_maps", "pixelperfect_loss", "PixelPerfectLoss", "PixelPerfectLoss.maps", "PixelPerfect.maps",
         "PixelPerfect.score", "PixelPerfect.report", "PixelPerfect.compare", "PixelPerfect.rank"]


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("which", [0, 1])
def test_bad_input_names_the_argument(entry_points, name, case, which):
    fn, argnames = entry_points[name]
    bad, err, match = CASES[case]
    args = [GOOD, GOOD]
    args[which] = bad
    with pytest.raises(err, match=match) as info:
        fn(*args)
    assert argnames[which] in str(info.value)


@pytest.mark.parametrize("name", NAMES)
def test_mismatched_shapes_and_gray_input(entry_points, name):
    fn, argnames = entry_points[name]
    with pytest.raises(ValueError, match="same shape"):
        fn(GOOD, torch.rand(1, 3, 32, 48))
    gray = GOOD.mean(1, keepdim=True)  # gray is accepted, as its replication to RGB
    for a, b in ((gray, GOOD), (GOOD, gray)):
        got, want = fn(a, b), fn(a.expand(-1, 3, -1, -1), b.expand(-1, 3, -1, -1))
        if isinstance(got, list):  # report
            got, want = [e["score"] for e in got], [e["score"] for e in want]
        assert got == want if isinstance(got, list) else torch.equal(got, want)


def test_range_check_opt_out():
    x = torch.rand(1, 3, 32, 32) * 1.2
    assert torch.isfinite(distortion_maps(x, x, check_range=False)).all()
    assert PixelPerfectLoss(check_range=False)(x, x).item() == 0.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_undershoot_is_refused_in_every_dtype_and_finite_without_the_check(dtype):
    # rounding values in [0, 1] never makes them negative, so the coarse dtypes get no extra room below 0
    # (bfloat16 gets 0.03 above 1); without the check, cells of mean luma below -0.01 must not make NaN
    target = torch.rand(1, 3, 32, 32)
    target[..., :8, :8] = 0
    out = target.clone()
    out[..., :8, :8] = -0.02
    out, target = out.to(dtype).requires_grad_(), target.to(dtype)
    with pytest.raises(ValueError, match=r"output: expected values in \[0, 1\], got range \[-0\.0"):
        PixelPerfectLoss()(out, target)
    loss = PixelPerfectLoss(check_range=False)(out, target)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(out.grad).all()
    assert torch.isfinite(distortion_maps(target, out, check_range=False)).all()


def test_compare_and_rank_name_the_bad_candidate():
    pp, bad = PixelPerfect(), torch.rand(1, 3, 32, 48)
    with pytest.raises(ValueError, match="reference and b: expected the same shape"):
        pp.compare(GOOD, GOOD, bad)
    with pytest.raises(ValueError, match=r"reference and images\[2\]: expected the same shape"):
        pp.rank(GOOD, [GOOD, GOOD, bad])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_float_rounding_past_one_passes_the_range_check(dtype):
    """A normalised blur of a white region gives 1 + 1 ulp in float32: within the tolerance of
    _checks.RANGE_TOLERANCE (or 4 ulp of the dtype); past it the message shows the value itself."""
    eps = max(1e-6, 4 * torch.finfo(dtype).eps)
    ones = torch.ones(1, 3, 32, 32, dtype=dtype)
    over = torch.nextafter(ones, ones * 2)
    assert bool(over.max() > 1) and torch.isfinite(PixelPerfectLoss()(over, ones))
    assert torch.isfinite(distortion_maps(ones, ones * 0 - torch.finfo(dtype).tiny)).all()  # a hair below 0
    far = ones + 3 * eps
    with pytest.raises(ValueError, match=r"output: expected values in \[0, 1\], got range \[1\.0+[1-9]"):
        PixelPerfectLoss()(far, ones)


@pytest.mark.parametrize("net,match", [("predictor", "net: expected a torch.nn.Module"),
                                       (torch.nn.Identity(), "net: expected a DistortionPredictor")])
def test_net_must_be_a_predictor(net, match):
    with pytest.raises(TypeError, match=match):
        distortion_maps(GOOD, GOOD, net=net)
    with pytest.raises(TypeError, match=match):
        pixelperfect_loss(GOOD, GOOD, net=net)


def test_option_errors_name_the_option():
    with pytest.raises(TypeError, match="weights path: expected a file or folder"):
        PixelPerfectLoss(weights_path=3)
    with pytest.raises(TypeError, match="unexpected option 'bogus'"):
        PixelPerfect(bogus=1)


def test_rank_takes_any_iterable_of_candidates_and_numpy_strengths():
    import numpy as np

    from pixelperfect_loss.engine import operators as op

    pp = PixelPerfect()
    darker = op.brightness_gain(GOOD, np.float32(-0.5))  # numpy scalars are strengths too
    assert pp.rank(GOOD, (im for im in [darker, GOOD])).tolist() == [[1, 0]]
