"""Weights given by path or $PIXELPERFECT_WEIGHTS are used or refused, never skipped; bad files are clear errors."""

import pytest
import torch
from safetensors.torch import save_file

from pixelperfect_loss import PixelPerfect, PixelPerfectLoss
from pixelperfect_loss import weights as W
from pixelperfect_loss.nets import DistortionPredictor, RelationalScorer


@pytest.fixture
def pair(tmp_path):
    """A folder holding both networks (a width-16 predictor, unlike the packaged one)."""
    torch.manual_seed(5)
    W.save_weights(DistortionPredictor(width=16), tmp_path / "both" / "predictor.safetensors", {"width": 16})
    W.save_weights(RelationalScorer(), tmp_path / "both" / "scorer.safetensors")
    return tmp_path / "both"


@pytest.mark.parametrize("net", W.NETS)
@pytest.mark.parametrize("where", ["missing path", "folder lacking the file"])
def test_set_env_variable_with_nothing_there_is_an_error(tmp_path, monkeypatch, net, where):
    target = tmp_path / "typo" if where == "missing path" else tmp_path
    monkeypatch.setenv(W.ENV_VAR, str(target))
    with pytest.raises(FileNotFoundError, match=rf"{target}.*\${W.ENV_VAR}"):
        W.find_weights(net)


def test_predictor_and_scorer_never_come_from_different_places(pair, monkeypatch):
    (pair / "scorer.safetensors").unlink()
    monkeypatch.setenv(W.ENV_VAR, str(pair))
    assert W.load_predictor().width == 16  # the folder's predictor, not the packaged one
    with pytest.raises(FileNotFoundError, match=f"no scorer.safetensors in folder {pair}"):
        PixelPerfect()


@pytest.mark.parametrize("via", ["env", "path"])
@pytest.mark.parametrize("net", W.NETS)
def test_single_file_serves_its_network_and_refuses_the_other(pair, monkeypatch, via, net):
    file = pair / f"{net}.safetensors"
    other = next(n for n in W.NETS if n != net)
    arg = None
    if via == "env":
        monkeypatch.setenv(W.ENV_VAR, str(file))
    else:
        arg = file
    load = {"predictor": W.load_predictor, "scorer": W.load_scorer}
    got = load[net](arg)
    saved, own = W.read_weights(file)[0], got.state_dict()
    assert saved.keys() == own.keys() and all(torch.equal(saved[k], own[k]) for k in saved)
    origin = f"\\${W.ENV_VAR}" if via == "env" else "path="
    with pytest.raises(ValueError, match=rf"given as {origin}.*holding the {net}; loading the {other} too needs a folder"):
        load[other](arg)
    if net == "predictor":
        assert PixelPerfectLoss(weights_path=arg).predictor.width == 16
        with pytest.raises(ValueError, match="needs a folder holding predictor.safetensors and scorer.safetensors"):
            PixelPerfect(arg)


def _bad_predictor(path, stem=None, width="16"):
    # the network without hue inputs: a broken stem is read as one (the loader tells them by the stem's shape)
    state = {k: v.contiguous() for k, v in DistortionPredictor(width=16, hue=False).state_dict().items()}
    if stem is not None:
        state["stem_fixed.weight"] = stem
    save_file(state, str(path), metadata={"width": width, "net": "DistortionPredictor"})
    return path


@pytest.mark.parametrize("stem,width,match", [
    (torch.zeros(12), "16", r"misshapen stem_fixed.weight \(12,\)"),
    (torch.tensor(1.0), "16", r"misshapen stem_fixed.weight \(\)"),
    (None, "-4", "'width' metadata '-4'; expected a positive integer"),
    (None, "sixteen", "'width' metadata 'sixteen'; expected a positive integer"),
    (None, "1000000", r"misshapen .*\(2000000,"),  # checked before anything of that size is allocated
])
def test_bad_tensor_ranks_and_metadata_are_value_errors_naming_the_file(tmp_path, stem, width, match):
    file = _bad_predictor(tmp_path / "bad.safetensors", stem, width)
    with pytest.raises(ValueError, match=match) as err:
        W.load_predictor(file)
    assert str(file) in str(err.value)


def test_unknown_net_is_an_error():
    with pytest.raises(ValueError, match="net: expected one of predictor, scorer"):
        W.find_weights("scorer.safetensors")


def test_nan_weights_are_refused(tmp_path):
    tensors, meta = W.read_weights(W.find_weights("predictor"))
    key = sorted(tensors)[3]
    tensors[key] = tensors[key].clone()
    tensors[key].view(-1)[0] = float("nan")
    save_file(tensors, str(tmp_path / "predictor.safetensors"), metadata=meta)
    with pytest.raises(ValueError, match=f"NaN or Inf values in {key}"):
        PixelPerfectLoss(weights_path=tmp_path / "predictor.safetensors")


def _flip_a_bit(src, dst):
    """A copy of the weights file ``src`` at ``dst`` with a mantissa bit of its last value flipped: still a
    readable file of finite floats."""
    raw = bytearray(src.read_bytes())
    raw[-3] ^= 0x01
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(bytes(raw))
    return dst


@pytest.mark.parametrize("net", ["predictor", "scorer"])
def test_corrupted_installed_weights_are_refused(tmp_path, monkeypatch, net):
    """A finite bit flip inside a tensor leaves a readable file; the installed files carry the digest of their
    tensors."""
    bad = _flip_a_bit(W.find_weights(net), tmp_path / f"{net}.safetensors")
    monkeypatch.setattr(W, "_packaged", lambda filename: tmp_path / filename if filename == bad.name else None)
    load = W.load_predictor if net == "predictor" else W.load_scorer
    with pytest.raises(ValueError, match=f"{net}.safetensors has tensors that do not match the digest"):
        load()
    monkeypatch.undo()
    assert not load().training  # the real installed files pass


@pytest.mark.parametrize("net", ["predictor", "scorer"])
def test_installed_weights_without_the_digest_are_checked_against_the_published_sha256(tmp_path, monkeypatch, net):
    """An installed file written before the digest (v6 and older) is checked by the installed revision's published
    sha256: a changed value in it is refused, where no digest would catch it."""
    tensors, meta = W.read_weights(W.find_weights(net))
    meta = {k: v for k, v in meta.items() if k != W._DIGEST}
    key = sorted(k for k, v in tensors.items() if v.is_floating_point())[0]
    tensors[key] = tensors[key].clone()
    tensors[key].view(-1)[0] += 1e-3  # finite: only a checksum sees it
    save_file(tensors, str(tmp_path / f"{net}.safetensors"), metadata=meta)
    monkeypatch.setattr(W, "_packaged", lambda filename: tmp_path / filename if filename == f"{net}.safetensors" else None)
    load = W.load_predictor if net == "predictor" else W.load_scorer
    with pytest.raises(ValueError, match=f"installed .*{net}.safetensors has sha256 .*expected .* for {W.HUB_REVISION}"):
        load()

def test_a_changed_value_in_any_saved_file_is_refused(tmp_path):
    """save_weights records a digest of the tensors: a finite bit flip is caught wherever the file lies."""
    good = W.save_weights(DistortionPredictor(width=16), tmp_path / "good" / "predictor.safetensors", {"width": 16})
    assert not W.load_predictor(good).training
    bad = _flip_a_bit(good, tmp_path / "bad" / "predictor.safetensors")
    with pytest.raises(ValueError, match="do not match the digest"):
        W.load_predictor(bad)
    with pytest.raises(ValueError, match="do not match the digest"):
        PixelPerfectLoss(weights_path=bad)


def test_weights_retrained_into_the_installed_folder_load(tmp_path, monkeypatch):
    """A source checkout's weights/ is the installed folder and the training command's default --out: what it
    writes there must load, by path (the scorer's training loads the new predictor so) and as the default."""
    for net in W.NETS:
        (tmp_path / f"{net}.safetensors").write_bytes(W.find_weights(net).read_bytes())
    monkeypatch.setattr(W, "_packaged", lambda filename: tmp_path / filename)
    torch.manual_seed(1)
    new = DistortionPredictor()
    W.save_weights(new, tmp_path / "predictor.safetensors", {"width": 32})
    for loaded in (W.load_predictor(tmp_path / "predictor.safetensors"), W.load_predictor()):
        assert all(torch.equal(a, b) for a, b in zip(new.state_dict().values(), loaded.state_dict().values(), strict=True))
    assert not W.load_scorer().training  # the published scorer beside it is still checked and passes
