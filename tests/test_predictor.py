"""The anti-symmetric predictor, the packaged weights and their loading."""

import pytest
import torch
import torch.nn.functional as F

from pixelperfect_loss import CHANNELS, DistortionPredictor, distortion_maps
from pixelperfect_loss.engine import operators as op
from pixelperfect_loss.nets.features import N_FIXED, N_HUE, fixed_features, global_features
from pixelperfect_loss.weights import find_weights, load_predictor, load_strict, read_weights, save_weights


@pytest.fixture(scope="module")
def trained():
    return load_predictor()


@pytest.mark.parametrize("shape", [(2, 3, 16, 16), (1, 3, 37, 53), (3, 3, 64, 48)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("extras", [False, True])  # v6's network, or the shipped one with hue inputs and statistics
def test_exact_antisymmetry_random_weights(shape, dtype, extras):
    torch.manual_seed(0)
    net = DistortionPredictor(hue=extras, stats=extras).to(dtype)
    a, b = torch.rand(shape, dtype=dtype), torch.rand(shape, dtype=dtype)
    with torch.no_grad():
        p = net(a, b)
        assert p.shape == (shape[0], 8, *shape[2:]) and p.dtype == dtype
        assert torch.equal(p, -net(b, a))
        assert torch.equal(net(a, a), torch.zeros_like(p))
        assert p.abs().max() > 0


def test_exact_antisymmetry_trained_weights(trained, photos):
    other = (photos * 0.8 + 0.1).flip(-1)
    with torch.no_grad():
        p = trained(photos, other)
        assert torch.equal(p, -trained(other, photos)) and p.abs().max() > 0.1
        assert trained(photos, photos).abs().max() == 0


def test_exact_antisymmetry_when_the_inputs_differ_in_memory_layout(trained, photos):
    """The module itself (not only the wrappers) runs both orders on contiguous copies: with one input
    channels_last the two orders differed by 5e-7, and a pair of equal images read 2e-5."""
    blurred = op.gaussian_blur(photos, torch.full((4,), 0.5))
    cl = photos.contiguous(memory_format=torch.channels_last)
    assert torch.equal(trained(cl, blurred), -trained(blurred, cl))
    assert trained(photos, cl).abs().max().item() == 0.0


def test_functional_identity_is_zero(photos):
    assert distortion_maps(photos, photos).abs().max() == 0


def test_trained_directions_on_known_distortions(photos):
    """Every channel, each sign the engine makes directly, on whole-image distortions: the channel named
    has the largest spatial mean of the eight maps, with the right sign, and the swapped pair reads the opposite."""
    t = lambda v: torch.full((4,), v)  # noqa: E731
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    cases = [
        ("blur", 1, op.gaussian_blur(photos, t(0.5))),
        ("blur", -1, op.unsharp_mask(photos, t(0.8), g())),
        ("noise", 1, op.gaussian_noise(photos, t(0.6), g())),
        ("jpeg", 1, op.jpeg(photos, t(0.6), g())),
        ("brightness", 1, op.brightness_gain(photos, t(0.6))),
        ("brightness", -1, op.brightness_gain(photos, t(-0.6))),
        ("contrast", 1, op.contrast_linear(photos, t(0.6))),
        ("contrast", -1, op.contrast_curve(photos, t(-0.6))),
        ("saturation", 1, op.saturation_luma(photos, t(0.8))),
        ("saturation", -1, op.saturation_luma(photos, t(-0.8))),
        ("warmth", 1, op.warmth_gain(photos, t(0.8))),
        ("warmth", -1, op.warmth_shift(photos, t(-0.8))),
        ("tint", 1, op.tint_gain(photos, t(0.8))),
        ("tint", -1, op.tint_shift(photos, t(-0.8))),
    ]
    for channel, sign, img in cases:
        m = distortion_maps(photos, img).mean((0, 2, 3))
        c = CHANNELS.index(channel)
        assert sign * m[c] > 0.05 and m.abs().argmax() == c, (channel, sign, m)
        # and the swapped pair reads the opposite
        assert sign * distortion_maps(img, photos).mean((0, 2, 3))[c] < -0.05


def test_one_runaway_region_cannot_blow_up_the_whole_map():
    """The 1/16 pair features are bounded before their global mean: past the bound, the maps no
    longer depend on how large a runaway activation is, and they stay exactly anti-symmetric."""
    a, b = torch.rand(2, 1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    outs = []
    for bias in (1e3, 1e6):
        torch.manual_seed(0)
        net = DistortionPredictor().eval()
        with torch.no_grad():
            net.fuse16[-1][0].bias[0] = bias  # one feature channel runs away everywhere
            outs.append(net(a, b))
            assert torch.equal(net(a, b), -net(b, a))
    assert torch.isfinite(outs[1]).all() and torch.equal(outs[0], outs[1])


def test_a_feature_past_the_bound_still_learns_in_training_mode():
    """In training the bound is off, so a unit that ran past it still gets a gradient (a clamp would
    give it none, and such units stayed dead for the rest of a run); eval mode keeps the bound."""
    a, b = torch.rand(2, 1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    net = DistortionPredictor()
    with torch.no_grad():
        net.fuse16[-1][0].bias[0] = 1e3
    grads = {}
    for mode in (True, False):
        net.train(mode)
        net.zero_grad()
        out = net(a, b)
        assert torch.equal(out, -net(b, a))  # exactly anti-symmetric in both modes
        out.abs().mean().backward()
        grads[mode] = net.fuse16[-1][0].bias.grad[0].item()
    assert grads[True] != 0.0 and grads[False] == 0.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shipped", [True, False])
def test_recomputed_pair_head_gives_the_same_gradients(trained, photos, monkeypatch, dtype, shipped):
    """Frozen in eval mode with gradients on (as in the loss), the pair head is recomputed in backward
    instead of keeping its activations; the maps and the image's gradient are the same bit for bit (the shipped
    network with its weights, and v6's, without hue inputs and statistics, through random weights)."""
    from pixelperfect_loss.nets import predictor as module

    torch.manual_seed(4)
    net = DistortionPredictor(hue=shipped, stats=shipped).to(dtype)
    if shipped:
        net.load_state_dict(trained.state_dict())
    net.eval().requires_grad_(False)
    ref = photos.to(dtype)
    img = op.gaussian_blur(ref, torch.full((4,), 0.4, dtype=dtype)).requires_grad_(True)
    calls, real = [], module.checkpoint

    def spy(fn, *args, **kwargs):
        calls.append(fn.__name__)
        return real(fn, *args, **kwargs)

    def plain(fn, *args, **kwargs):
        return fn(*args)

    results = []
    for wrapper in (spy, plain):
        monkeypatch.setattr(module, "checkpoint", wrapper)
        out = net(ref, img)
        weights = torch.linspace(-1, 1, out.numel(), dtype=dtype).view_as(out)
        (grad,) = torch.autograd.grad((out * weights).sum(), img)
        results.append((out.detach(), grad))
        monkeypatch.undo()
    assert calls == ["fixed_features", "_pair"]  # the image's fixed features (the reference needs no gradient)
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])
    assert results[0][1].abs().max() > 0
    monkeypatch.setattr(module, "checkpoint", spy)
    calls.clear()
    with torch.no_grad():
        net(ref, img)
    net.train()
    net(ref, img)
    assert calls == ["fixed_features"]  # no backward to come, and training (recomputing would only cost time)


def test_any_size_above_minimum_and_minimum_error():
    x = torch.rand(1, 3, 16, 19)
    assert distortion_maps(x, x.flip(-1)).shape == (1, 8, 16, 19)
    with pytest.raises(ValueError, match=">= 16"):
        distortion_maps(torch.rand(1, 3, 15, 40), torch.rand(1, 3, 15, 40))


def test_safetensors_round_trip(tmp_path):
    torch.manual_seed(1)
    net = DistortionPredictor(width=16)
    path = save_weights(net, tmp_path / "predictor.safetensors", {"width": 16})
    back = load_predictor(path)
    for (k, v), (k2, v2) in zip(net.state_dict().items(), back.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    assert not back.training and not any(p.requires_grad for p in back.parameters())


@pytest.mark.parametrize("hue", [False, True])
@pytest.mark.parametrize("stats", [False, True])
def test_loader_builds_the_network_the_file_was_trained_as(tmp_path, hue, stats):
    # with or without the hue-direction inputs (--hue), read from the stem's shape, and the whole-image
    # statistics (--stats), read from the context layer's
    torch.manual_seed(2)
    a, b = torch.rand(2, 1, 3, 32, 32).unbind(0)
    net = DistortionPredictor(width=16, hue=hue, stats=stats).eval()
    assert net.stem_fixed.weight.shape[1] == N_FIXED + N_HUE * hue
    back = load_predictor(save_weights(net, tmp_path / "p.safetensors", {"width": 16}))
    assert back.hue is hue and back.stats is stats and torch.equal(back(a, b), net(a, b))
    assert torch.equal(back(a, b), -back(b, a)) and back(a, a).abs().max() == 0


def test_global_statistics_separate_contrast_brightness_saturation_and_casts():
    g = torch.Generator().manual_seed(5)
    x = 0.25 + 0.5 * torch.rand(2, 3, 64, 64, generator=g)
    x = F.avg_pool2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), 5, 1)  # some spatial structure
    stats = lambda img: global_features(F.pixel_unshuffle(img, 4))  # noqa: E731
    base = stats(x)

    def change(img):  # [mean luma, log luma spread, log chroma, mean yellow-blue, log yellow-blue spread]
        d = stats(img) - base
        return d[:, [0, 2, 3, 5, 7]]

    y = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    ym = y.mean((2, 3), keepdim=True)
    contrast = change(ym + 1.5 * (x - ym))  # about the mean luma: spread up, mean kept
    assert (contrast[:, 1] > 0.05).all() and (contrast[:, 0].abs() < 1e-5).all()
    offset = change(x + 0.1)  # brightness offset: mean up, spread kept
    assert (offset[:, 0] > 0.09).all() and (offset[:, 1].abs() < 1e-4).all()
    gain = change(x * 1.2)  # exposure: mean and spread up together
    assert (gain[:, 0] > 0.05).all() and (gain[:, 1] > 0.05).all()
    sat = change(y + 1.5 * (x - y))  # saturation: chroma and its spread up, luma kept
    assert (sat[:, 2] > 0.05).all() and (sat[:, 4] > 0.05).all() and (sat[:, :2].abs() < 1e-4).all()
    cast = change(x + torch.tensor([0.05, 0.0, -0.05]).view(1, 3, 1, 1))  # towards yellow: mean shifts, spread kept
    assert (cast[:, 3] > 0.04).all() and (cast[:, 4].abs() < 1e-4).all()
    # coarse statistics: a mild blur leaves the luma spread of the 4x4 cell means nearly unchanged
    blur = change(op.gaussian_blur(x, torch.full((2,), 0.1)))
    assert (blur[:, 1].abs() < 0.25 * contrast[:, 1]).all()


def test_global_statistics_have_finite_gradients_on_constant_images():
    x = torch.full((1, 3, 32, 32), 0.5, dtype=torch.float64, requires_grad=True)
    torch.manual_seed(6)
    net = DistortionPredictor(width=16, stats=True).double()
    (net(x, torch.rand(1, 3, 32, 32, dtype=torch.float64)) ** 2).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().max() > 0


def test_hue_direction_turns_with_a_colour_cast_not_with_saturation():
    torch.manual_seed(3)
    x = 0.2 + 0.6 * torch.rand(1, 3, 32, 32)
    y = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    hue = lambda img: fixed_features(F.pixel_unshuffle(img, 4), hue=True)[:, N_FIXED:]  # noqa: E731
    assert hue(x).abs().max() <= 1.0
    # chroma scaled about the luma: the opponent means and the chroma magnitude scale together
    assert torch.allclose(hue(y + 1.5 * (x - y)), hue(x), atol=0.01)
    assert torch.allclose(hue(y + 0.5 * (x - y)), hue(x), atol=0.03)
    cast = (x + torch.tensor([0.08, 0.0, -0.08]).view(1, 3, 1, 1)).clamp(0, 1)  # towards yellow
    assert (hue(cast)[:, 1] - hue(x)[:, 1]).mean() > 0.1
    assert fixed_features(F.pixel_unshuffle(x, 4)).shape[1] == N_FIXED


def test_shipped_weights_load_strictly():
    path = find_weights("predictor")
    tensors, meta = read_weights(path)
    net = DistortionPredictor(width=int(meta["width"]))
    assert set(tensors) == set(net.state_dict())
    load_strict(net, tensors)


def test_missing_or_misshapen_tensor_is_an_error(tmp_path):
    net = DistortionPredictor()
    tensors = {k: v.clone() for k, v in net.state_dict().items()}
    key = next(iter(tensors))
    missing = dict(tensors)
    del missing[key]
    with pytest.raises(ValueError, match=f"missing {key}"):
        load_strict(DistortionPredictor(), missing)
    bad = dict(tensors)
    bad[key] = torch.zeros(1)
    with pytest.raises(ValueError, match="misshapen"):
        load_strict(DistortionPredictor(), bad)
    extra = dict(tensors, stray=torch.zeros(1))
    with pytest.raises(ValueError, match="unexpected stray"):
        load_strict(DistortionPredictor(), extra)


def test_corrupted_and_truncated_files_are_errors(tmp_path):
    good = save_weights(DistortionPredictor(), tmp_path / "good.safetensors", {"width": 32})
    trunc = tmp_path / "trunc.safetensors"
    trunc.write_bytes(good.read_bytes()[:1000])
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    for p in (trunc, junk):
        with pytest.raises(ValueError, match="not a readable safetensors"):
            load_predictor(p)
    narrow = save_weights(DistortionPredictor(width=16), tmp_path / "narrow.safetensors", {"width": 32})
    with pytest.raises(ValueError, match="misshapen"):
        load_predictor(narrow)


def test_packaged_files_are_the_published_files_of_the_packaged_revision():
    from pixelperfect_loss.weights import HUB_REPO, HUB_REVISION, KNOWN_SHA256, resolve_pretrained, sha256

    folder = resolve_pretrained()
    for net in ("predictor", "scorer"):
        assert sha256(folder / f"{net}.safetensors") == KNOWN_SHA256[f"{HUB_REPO}@{HUB_REVISION}/{net}.safetensors"]
