"""Weight discovery order and Hub loading from a cache built by the test, offline."""

import pytest
import torch

from pixelperfect_loss import weights as W
from pixelperfect_loss import PixelPerfect, PixelPerfectLoss
from pixelperfect_loss.nets import DistortionPredictor, RelationalScorer

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _cache(tmp_path, repo="org/pp-test", revision="v1"):
    """A Hugging Face cache laid out as hf_hub_download leaves it, holding both networks."""
    root = tmp_path / "hub"
    base = root / f"models--{repo.replace('/', '--')}"
    snap = base / "snapshots" / COMMIT
    snap.mkdir(parents=True)
    (base / "refs").mkdir()
    (base / "refs" / revision).write_text(COMMIT)
    torch.manual_seed(3)
    net = DistortionPredictor(width=16)
    W.save_weights(net, snap / "predictor.safetensors", {"width": 16})
    W.save_weights(RelationalScorer(), snap / "scorer.safetensors")
    return root, net


@pytest.fixture
def offline(monkeypatch):
    import huggingface_hub.constants as c

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)


def test_offline_hub_load_from_local_cache(tmp_path, offline):
    root, net = _cache(tmp_path)
    got = W.load_predictor(repo_id="org/pp-test", revision="v1", cache_dir=root)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), got.state_dict().values()))


def test_hub_sha256_is_checked(tmp_path, offline, monkeypatch):
    root, _ = _cache(tmp_path)
    monkeypatch.setitem(W.KNOWN_SHA256, "org/pp-test@v1/predictor.safetensors", "0" * 64)
    with pytest.raises(ValueError, match="sha256"):
        W.load_predictor(repo_id="org/pp-test", revision="v1", cache_dir=root)


def test_offline_not_cached_names_every_place_tried(tmp_path, offline, monkeypatch):
    monkeypatch.setattr(W, "_packaged", lambda filename: None)
    monkeypatch.setenv(W.ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError) as err:
        W.find_weights("predictor", cache_dir=tmp_path / "empty")
    msg = str(err.value)
    assert W.ENV_VAR in msg and "installed with the package" in msg and "HF_HUB_OFFLINE" in msg
    assert W.HUB_REPO in msg


def test_order_explicit_path_then_env_then_package(tmp_path, monkeypatch):
    a = W.save_weights(DistortionPredictor(width=16), tmp_path / "a" / "predictor.safetensors", {"width": 16})
    b = W.save_weights(DistortionPredictor(width=16), tmp_path / "b" / "predictor.safetensors", {"width": 16})
    monkeypatch.setenv(W.ENV_VAR, str(b.parent))
    assert W.find_weights("predictor", a) == a
    assert W.find_weights("predictor") == b
    monkeypatch.delenv(W.ENV_VAR)
    assert W.find_weights("predictor").name == "predictor.safetensors"
    with pytest.raises(FileNotFoundError, match="given as path"):
        W.find_weights("predictor", tmp_path / "missing.safetensors")


def test_from_pretrained_named_version_pinned_revision_offline(tmp_path, offline, monkeypatch):
    root, net = _cache(tmp_path)
    monkeypatch.setitem(W.MODELS, "pp-test", ("org/pp-test", "v1"))
    pp = PixelPerfect.from_pretrained("pp-test", cache_dir=root)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), pp.predictor.state_dict().values()))
    loss_fn = PixelPerfectLoss.from_pretrained("org/pp-test", revision="v1", cache_dir=root, channels=["noise"])
    assert loss_fn.channels == ["noise"]
    with pytest.raises(FileNotFoundError, match="org/pp-test@v2"):
        PixelPerfect.from_pretrained("org/pp-test", revision="v2", cache_dir=root)


def test_from_pretrained_packaged_default_and_bad_names():
    assert (W.resolve_pretrained() / "scorer.safetensors").is_file()
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        W.resolve_pretrained("nope")
    with pytest.raises(TypeError, match="name"):
        W.resolve_pretrained(3)
