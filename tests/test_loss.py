"""PixelPerfectLoss and the functional API."""

import copy
import warnings

import pytest
import torch

from pixelperfect_loss import CHANNELS, PixelPerfectLoss, pixelperfect_loss
from pixelperfect_loss.engine import operators as op
from pixelperfect_loss.functional import run_predictor


@pytest.fixture(scope="module")
def loss_fn():
    return PixelPerfectLoss()


def test_zero_when_output_equals_target(loss_fn, photos):
    assert loss_fn(photos, photos).item() == 0.0
    assert pixelperfect_loss(photos, photos, channels="noise").item() == 0.0


@pytest.mark.parametrize("direction", ["both", "more", "less"])
def test_gradients_finite_at_identity_constant_and_extremes(direction, photos):
    fn = PixelPerfectLoss(direction=direction)
    const = torch.full_like(photos, 0.5)
    blurred = op.gaussian_blur(photos, torch.ones(4))
    for target, output in [(photos, photos), (const, const), (torch.zeros_like(photos), torch.ones_like(photos)),
                           (photos, blurred), (torch.ones_like(photos), photos)]:
        out = output.clone().requires_grad_()
        tgt = target.clone().requires_grad_()
        fn(out, tgt).backward()
        assert torch.isfinite(out.grad).all()
        assert tgt.grad is None  # gradients flow to the output only


@pytest.mark.parametrize("direction", ["both", "more", "less"])
@pytest.mark.parametrize("guard", [0.0, 0.1])
def test_gradient_is_zero_at_output_equals_target(direction, guard, photos):
    # the loss's minimum: a non-zero (sub)gradient there would push a perfect output away from the target
    out = photos.clone().double().requires_grad_()
    fn = PixelPerfectLoss(["blur", "noise"], direction=direction, guard=guard).double()
    fn(out, photos.double()).backward()
    assert torch.equal(out.grad, torch.zeros_like(out))


def test_direction_more_ignores_sharpening_but_penalises_blur(photos):
    more = PixelPerfectLoss(channels=["blur"], direction="more", reduction="none")
    less = PixelPerfectLoss(channels=["blur"], direction="less", reduction="none")
    blurred = op.gaussian_blur(photos, torch.full((4,), 0.4))
    assert (more(blurred, photos) > less(blurred, photos)).all()
    assert (more(photos, blurred) < less(photos, blurred)).all()  # the photo is sharper than the blurred target
    # without the guard (which adds a small share of the other direction), "more" ignores sharpening entirely
    sharp_more = PixelPerfectLoss(channels=["blur"], direction="more", reduction="none", guard=0.0)(photos, blurred)
    assert (sharp_more < 0.05 * less(photos, blurred)).all()


def test_reductions_channels_and_weights(photos):
    noisy = op.gaussian_noise(photos, torch.full((4,), 0.5), torch.Generator().manual_seed(0))
    none = PixelPerfectLoss(channels=["blur", "noise"], reduction="none")(noisy, photos)
    assert none.shape == (4,)
    torch.testing.assert_close(PixelPerfectLoss(channels=["blur", "noise"])(noisy, photos), none.mean())
    torch.testing.assert_close(PixelPerfectLoss(channels=["blur", "noise"], reduction="sum")(noisy, photos), none.sum())
    w = PixelPerfectLoss(channels=["blur", "noise"], weights=[2.0, 3.0], reduction="none", guard=0)(noisy, photos)
    b = PixelPerfectLoss(channels="blur", reduction="none", guard=0)(noisy, photos)
    n = PixelPerfectLoss(channels="noise", reduction="none", guard=0)(noisy, photos)
    torch.testing.assert_close(w, 2 * b + 3 * n)
    d = PixelPerfectLoss(weights={"noise": 3.0, "blur": 2.0}, reduction="none", guard=0)
    assert d.channels == ["blur", "noise"]
    torch.testing.assert_close(d(noisy, photos), w)
    partial = PixelPerfectLoss(channels=["blur", "noise"], weights={"noise": 3.0}, reduction="none", guard=0)
    torch.testing.assert_close(partial(noisy, photos), b + 3 * n)  # blur keeps weight 1


def test_zero_for_equal_images_in_different_memory_layouts(loss_fn, photos):
    channels_last = photos.to(memory_format=torch.channels_last)
    assert loss_fn(channels_last, photos).item() == 0.0
    assert loss_fn.maps(photos, channels_last).abs().max().item() == 0.0


@pytest.mark.parametrize("direction", ["both", "more", "less"])
def test_guard_holds_what_the_selection_leaves_free(direction, photos):
    out = op.gaussian_noise(op.brightness_gain(photos, torch.full((4,), 0.5)), torch.full((4,), 0.3),
                            torch.Generator().manual_seed(0))
    plain = PixelPerfectLoss(channels=["blur"], direction=direction, reduction="none", guard=0)
    guarded = PixelPerfectLoss(channels=["blur"], direction=direction, reduction="none", guard=0.25)
    m = run_predictor(plain.predictor, photos, out, lowres=True)  # the native 1/4 cells the loss averages
    chosen = {"both": m[:, 0].abs(), "more": m[:, 0].clamp_min(0), "less": (-m[:, 0]).clamp_min(0)}[direction]
    free = m.abs().mean((2, 3)).sum(1) - chosen.mean((1, 2))
    torch.testing.assert_close(plain(out, photos), chosen.mean((1, 2)))
    torch.testing.assert_close(guarded(out, photos) - plain(out, photos), 0.25 * free)
    assert (free > 0.05).all()  # brighter and noisier: the guard sees what the blur channel does not
    # all channels in both directions leave nothing free: the guard changes nothing
    full = PixelPerfectLoss(reduction="none", guard=0)(out, photos)
    assert torch.equal(PixelPerfectLoss(reduction="none", guard=5.0)(out, photos), full)
    assert guarded(photos, photos).abs().max() == 0
    torch.testing.assert_close(pixelperfect_loss(out, photos, channels="blur", direction=direction, guard=0.25,
                                                 reduction="none"), guarded(out, photos))


def test_maps_method_and_frozen_eval(loss_fn, photos):
    from pixelperfect_loss import distortion_maps

    blurred = op.gaussian_blur(photos, torch.full((4,), 0.5))
    m = loss_fn.maps(blurred, photos)  # (output, target): the output's maps against the target
    assert m.shape == (4, 8, 64, 64)
    torch.testing.assert_close(m, distortion_maps(photos, blurred))
    assert torch.equal(loss_fn.maps(photos, blurred), -m)
    assert (m[:, CHANNELS.index("blur")].mean((1, 2)) > 0.1).all()
    loss_fn.train()
    assert loss_fn.training and not loss_fn.predictor.training
    assert not any(p.requires_grad for p in loss_fn.parameters())
    loss_fn.eval()


def test_pickle_round_trip(loss_fn, photos):
    import pickle

    back = pickle.loads(pickle.dumps(loss_fn))
    x = photos.flip(-1)
    assert back(x, photos).item() == loss_fn(x, photos).item()


def test_different_devices_are_an_error(photos):
    from pixelperfect_loss._checks import check_pair

    with pytest.raises(ValueError, match="reference and image: expected the same device"):
        check_pair(photos, photos.to("meta"), check_range=False)


def test_state_dict_round_trip_keeps_the_constructor_options_and_deepcopy(loss_fn, photos):
    """Options come from the constructor, all of them: a checkpoint of another selection loads its predictor
    weights, and used to switch the channels silently while keeping this loss's direction."""
    other = PixelPerfectLoss(channels=["noise"], direction="more")
    assert "channel_weights" not in loss_fn.state_dict()
    other.load_state_dict(loss_fn.state_dict(), strict=True)
    assert other.channels == ["noise"] and other.direction == "more"
    legacy = {**loss_fn.state_dict(), "channel_weights": loss_fn.channel_weights}  # as older checkpoints hold it
    with pytest.warns(UserWarning, match="channel_weights in the checkpoint"):
        other.load_state_dict(legacy, strict=True)
    assert other.channels == ["noise"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss_fn.load_state_dict(legacy, strict=True)  # the same selection: accepted quietly
    clone = copy.deepcopy(loss_fn)
    x = photos.flip(-2)
    assert clone(x, photos).item() == loss_fn(x, photos).item()


def test_float64_output_dtype_follows_input(photos):
    fn = PixelPerfectLoss().double()
    x = photos.double()
    out = fn(x.flip(-1), x)
    assert out.dtype == torch.float64
    assert fn.maps(x.flip(-1), x).dtype == torch.float64


@pytest.mark.parametrize("direction,guard", [("both", 0.1), ("more", 0.1), ("less", 0.1), ("more", 0.0)])
def test_gradcheck_float64_small(direction, guard):
    fn = PixelPerfectLoss(channels=["blur", "brightness"], direction=direction, guard=guard).double()
    torch.manual_seed(0)
    target = torch.rand(1, 3, 16, 16, dtype=torch.float64) * 0.8 + 0.1
    output = (target + 0.05 * torch.randn_like(target)).clamp(0.05, 0.95).requires_grad_()
    # the full Jacobian once (20 s); the other settings in fast mode (random projections of it, 0.2 s)
    assert torch.autograd.gradcheck(lambda o: fn(o, target), (output,), eps=1e-6, atol=1e-5,
                                    fast_mode=(direction, guard) != ("both", 0.1))


@pytest.mark.parametrize("kwargs,match", [
    (dict(channels=["blurr"]), "unknown channel 'blurr'; valid channels are " + ", ".join(CHANNELS)),
    (dict(channels=[]), "at least one"),
    (dict(direction="up"), "direction"),
    (dict(reduction="max"), "reduction"),
    (dict(channels=["blur"], weights=[1.0, 2.0]), "weights"),
    (dict(weights=[-1.0] * 8), "non-negative"),
    (dict(weights={"blurr": 1.0}), "weights: unknown channel 'blurr'"),
    (dict(weights=[0.0] * 8), "weights: expected at least one positive weight"),
    (dict(channels=["blur"], weights={"blur": 0.0}), "weights: expected at least one positive weight"),
    (dict(channels=["blur"], weights={"noise": 1.0}), "weights: keys must be selected channel names \\(blur\\), got 'noise'"),
    (dict(weights={}), "empty mapping"),
    (dict(weights={"blur": -2.0}), "non-negative"),
    (dict(guard=-0.1), "guard: expected a finite non-negative"),
    (dict(guard=float("nan")), "guard: expected a finite non-negative"),
    (dict(channels=["blur"], weights=[1e39]), "weights: expected values that float32 holds"),  # stored inf: NaN loss
    (dict(channels=["blur"], weights=[1e-46]), "weights: expected values that float32 holds"),  # 0: no channel left
])
def test_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PixelPerfectLoss(**kwargs)


@pytest.mark.parametrize("weights", ["1.0", [1.0, "a"] + [1.0] * 6, torch.ones(8, dtype=torch.bool), [object()] * 8])
def test_weights_must_be_numbers(weights):
    with pytest.raises(TypeError, match="weights: expected numbers or a mapping"):
        PixelPerfectLoss(weights=weights)


def test_channels_must_be_names():
    with pytest.raises(TypeError, match="channels: expected a channel name or a list of names"):
        PixelPerfectLoss(channels=3)


def test_numpy_and_tensor_numbers_are_accepted(photos):
    import numpy as np

    out = op.gaussian_blur(photos, torch.full((4,), 0.5))
    want = PixelPerfectLoss(channels=["blur"], weights=[2.0], guard=0.25)(out, photos)
    for kw in (dict(guard=np.float32(0.25)), dict(guard=torch.tensor(0.25)),
               dict(weights=torch.tensor([2.0], requires_grad=True))):
        fn = PixelPerfectLoss(**{"channels": ["blur"], "weights": [2.0], "guard": 0.25, **kw})
        assert not any(b.requires_grad for b in fn.buffers())
        torch.testing.assert_close(copy.deepcopy(fn)(out, photos), want)


@pytest.mark.parametrize("guard", ["0.1", True, None, [0.1]])
def test_guard_must_be_a_number(guard):
    with pytest.raises(TypeError, match="guard: expected a non-negative float"):
        PixelPerfectLoss(guard=guard)


@pytest.mark.parametrize("make,err,match", [
    (lambda x: (x[0], x), ValueError, "output: expected shape"),
    (lambda x: (x, x[..., :32]), ValueError, "same shape"),
    (lambda x: ((x * 255).to(torch.uint8), x), TypeError, "output: expected a floating-point"),
    (lambda x: (x * 2 - 1, x), ValueError, r"output: expected values in \[0, 1\]"),
    (lambda x: (x, torch.full_like(x, float("nan"))), ValueError, "target: contains NaN"),
    (lambda x: (x[:, :2], x[:, :2]), ValueError, "1 \\(gray\\) or 3"),
    (lambda x: (x[:0], x[:0]), ValueError, "non-empty"),
    (lambda x: (x.numpy(), x), TypeError, "torch.Tensor"),
])
def test_bad_input(loss_fn, photos, make, err, match):
    out, tgt = make(photos)
    with pytest.raises(err, match=match):
        loss_fn(out, tgt)


def test_gray_input_accepted(loss_fn, photos):
    g = photos.mean(1, keepdim=True)
    assert loss_fn(g, g).item() == 0.0
