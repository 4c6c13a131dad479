"""The relational scorer and the PixelPerfect metric API."""

import pytest
import torch

from pixelperfect_loss import CHANNELS
from pixelperfect_loss.engine import make_ranked_sets
from pixelperfect_loss.engine import operators as op
from pixelperfect_loss.metric import PixelPerfect
from pixelperfect_loss.nets import RelationalScorer, generic_features
from pixelperfect_loss.train.scorer import ranknet_loss


@pytest.fixture(scope="module")
def pp():
    return PixelPerfect()


def test_score_identical_is_exactly_zero(pp, photos):
    s = pp.score(photos, photos)
    assert s.shape == (4,) and torch.equal(s, torch.zeros(4))
    # also when the two copies differ only in memory layout
    assert torch.equal(pp.score(photos.to(memory_format=torch.channels_last), photos), torch.zeros(4))


def test_score_gradient_is_zero_at_the_reference(pp, photos):
    img = photos.clone().requires_grad_()
    pp.score(photos, img).sum().backward()
    assert torch.equal(img.grad, torch.zeros_like(img))  # identity is the maximum, 0


def test_score_negative_for_distorted_images(pp, photos):
    for img in (op.gaussian_noise(photos, torch.full((4,), 0.5), torch.Generator().manual_seed(0)),
                op.gaussian_blur(photos, torch.full((4,), 0.5)),
                photos.flip(-1)):
        assert (pp.score(photos, img) < 0).all()
    # a one-pixel change still scores below zero
    tiny = photos.clone()
    tiny[:, :, 10, 10] = 1 - tiny[:, :, 10, 10]
    assert (pp.score(photos, tiny) < 0).all()


def test_ranked_set_comes_out_in_order(pp, photos):
    sets = make_ranked_sets(photos, 4, torch.Generator().manual_seed(11))
    images = [sets.images[:, j] for j in range(4)]
    order = pp.rank(sets.reference, images)
    assert order.shape == (4, 4)
    assert (order == torch.arange(4)).all(), order


def test_compare_orders_sum_to_one_exactly(pp, photos):
    a = op.gaussian_noise(photos, torch.full((4,), 0.2), torch.Generator().manual_seed(0))
    b = op.gaussian_blur(photos, torch.full((4,), 0.6))
    p = pp.compare(photos, a, b)
    q = pp.compare(photos, b, a)
    assert torch.equal(p + q, torch.ones(4))
    assert torch.equal(pp.compare(photos, a, a), torch.full((4,), 0.5))
    assert (pp.compare(photos, photos, b) > 0.5).all()  # the reference itself beats a distorted image


def test_score_is_differentiable_with_finite_gradients(pp, photos):
    for img in (photos.clone(), torch.full_like(photos, 0.5), op.gaussian_blur(photos, torch.ones(4))):
        x = img.clone().requires_grad_()
        pp.score(photos, x).sum().backward()
        assert torch.isfinite(x.grad).all()


def test_gradcheck_score_float64():
    pp64 = PixelPerfect().double()
    torch.manual_seed(0)
    ref = torch.rand(1, 3, 16, 16, dtype=torch.float64) * 0.8 + 0.1
    img = (ref + 0.05 * torch.randn_like(ref)).clamp(0.05, 0.95).requires_grad_()
    assert torch.autograd.gradcheck(lambda x: pp64.score(ref, x), (img,), eps=1e-6, atol=1e-5)


def test_report_fields(pp, photos):
    dark = op.brightness_gain(photos, torch.full((4,), -0.7))
    rep = pp.report(photos, dark)
    assert len(rep) == 4
    for entry in rep:
        assert set(CHANNELS) <= set(entry) and "other" in entry and entry["score"] < 0
        assert all(0 <= entry[c]["area"] <= 1 for c in CHANNELS)
        shares = sum(entry[c]["score_share"] for c in CHANNELS) + entry["other"]["score_share"]
        assert shares == pytest.approx(entry["score"], rel=1e-4, abs=1e-6)
        assert entry["brightness"]["mean"] < -0.05  # darker
        assert max(CHANNELS, key=lambda c: entry[c]["area"]) == "brightness"
    maps = pp.maps(photos, dark)
    for i, entry in enumerate(rep):
        for c, name in enumerate(CHANNELS):
            assert entry[name]["mean"] == pytest.approx(float(maps[i, c].mean()), abs=1e-6)
            assert entry[name]["area"] == pytest.approx(float((maps[i, c].abs() > 0.1).float().mean()))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_report_runs_the_predictor_once_with_the_same_numbers(pp, photos, dtype):
    # an odd size, so that the padded input's border cells are cropped differently at the two resolutions
    ref = photos[:2, :, :61, :45].to(dtype)
    img = op.gaussian_blur(op.warmth_gain(ref, torch.full((2,), 0.6)), torch.full((2,), 0.4))
    calls = []
    hook = pp.predictor.register_forward_hook(lambda *_: calls.append(1))
    try:
        rep = pp.report(ref, img)
    finally:
        hook.remove()
    assert len(calls) == 1
    maps, score = pp.maps(ref, img), pp.score(ref, img)
    for i, entry in enumerate(rep):
        assert entry["score"] == pytest.approx(float(score[i]), rel=1e-6)
        for c, name in enumerate(CHANNELS):  # the same operations as maps(): equal to the last bit
            assert entry[name]["mean"] == float(maps[i, c].mean())
            assert entry[name]["area"] == float((maps[i, c].abs() > 0.1).float().mean())


def test_frozen_eval_and_bad_input(pp, photos):
    pp.train()
    assert not pp.predictor.training and not pp.scorer.training
    with pytest.raises(ValueError, match="same shape"):
        pp.score(photos, photos[..., :32])
    with pytest.raises(TypeError, match="^images: expected a non-empty list"):
        pp.rank(photos, photos)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_generic_features_of_identical_16_bit_images_are_exactly_zero(photos, dtype):
    """The smooth |x| is sqrt(x^2 + eps^2) - eps: 6.7e-6 at 0 in float16, so these run in float32."""
    x = photos.to(dtype)
    f = generic_features(x, x)
    assert f.dtype == dtype and torch.equal(f, torch.zeros_like(f))
    assert (generic_features(x, x.flip(-1)) > 0).any()


def test_scorer_construction_properties():
    s = RelationalScorer()
    assert torch.equal(s(torch.zeros(3, 32)), torch.zeros(3))
    assert (s(torch.rand(3, 32) + 1e-3) < 0).all()
    x = torch.rand(2, 3, 24, 40)
    assert torch.equal(generic_features(x, x), torch.zeros(2, 16))
    good = torch.tensor([[-1.0, -2.0, -3.0]])
    assert ranknet_loss(good) < ranknet_loss(good.flip(1))
