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
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), got.state_dict().values(), strict=True))


def test_hub_sha256_is_checked(tmp_path, offline, monkeypatch):
    root, _ = _cache(tmp_path)
    monkeypatch.setitem(W.KNOWN_SHA256, "org/pp-test@v1/predictor.safetensors", "0" * 64)
    with pytest.raises(ValueError, match="sha256"):
        W.load_predictor(repo_id="org/pp-test", revision="v1", cache_dir=root)


def test_offline_not_cached_names_every_place_tried(tmp_path, offline, monkeypatch):
    monkeypatch.setattr(W, "_packaged", lambda filename: None)
    monkeypatch.delenv(W.ENV_VAR, raising=False)
    with pytest.raises(FileNotFoundError) as err:
        W.find_weights("predictor", cache_dir=tmp_path / "empty")
    msg = str(err.value)
    assert f"${W.ENV_VAR} (not set)" in msg and "installed with the package" in msg and "HF_HUB_OFFLINE" in msg
    assert W.HUB_REPO in msg and "LocalEntryNotFoundError: " in msg  # the exception's message follows its name


def test_order_explicit_path_then_env_then_package(tmp_path, monkeypatch):
    a = W.save_weights(DistortionPredictor(width=16), tmp_path / "a" / "predictor.safetensors", {"width": 16})
    b = W.save_weights(DistortionPredictor(width=16), tmp_path / "b" / "predictor.safetensors", {"width": 16})
    monkeypatch.setenv(W.ENV_VAR, str(b.parent))
    assert W.find_weights("predictor", a) == a
    assert W.find_weights("predictor") == b
    monkeypatch.delenv(W.ENV_VAR)
    assert W.find_weights("predictor") == W._packaged("predictor.safetensors")
    with pytest.raises(FileNotFoundError, match="given as path"):
        W.find_weights("predictor", tmp_path / "missing.safetensors")


def test_from_pretrained_named_version_pinned_revision_offline(tmp_path, offline, monkeypatch):
    root, net = _cache(tmp_path)
    monkeypatch.setitem(W.MODELS, "pp-test", ("org/pp-test", "v1"))
    pp = PixelPerfect.from_pretrained("pp-test", cache_dir=root)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), pp.predictor.state_dict().values(), strict=True))
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


@pytest.mark.parametrize("revision", ["does-not-exist", "v1"])
def test_revision_without_repo_id_goes_to_the_hub(tmp_path, offline, monkeypatch, revision):
    monkeypatch.setenv(W.ENV_VAR, str(tmp_path / "unused"))  # a revision asks for the Hub version, not this
    with pytest.raises(FileNotFoundError) as err:
        W.find_weights("predictor", revision=revision, cache_dir=tmp_path / "empty")
    assert f"{W.HUB_REPO}@{revision}/predictor.safetensors" in str(err.value)
    assert "installed with the package" not in str(err.value)
    with pytest.raises(FileNotFoundError, match=f"@{revision}/"):
        PixelPerfect(revision=revision, cache_dir=tmp_path / "empty")


def test_revision_without_repo_id_loads_that_revision_from_the_cache(tmp_path, offline):
    root, net = _cache(tmp_path, repo=W.HUB_REPO, revision="v0-test")
    pp = PixelPerfect(revision="v0-test", cache_dir=root)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), pp.predictor.state_dict().values(), strict=True))
    # the packaged revision is still served from the installed files, offline and with an empty cache
    assert W.find_weights("scorer", revision=W.HUB_REVISION, cache_dir=tmp_path / "empty") == W._packaged("scorer.safetensors")


@pytest.mark.parametrize("hub", [{"revision": "v1"}, {"repo_id": "org/pp-test"}])
def test_path_and_hub_options_together_are_an_error(hub):
    with pytest.raises(ValueError, match="path: give a weights path or Hub options"):
        W.load_predictor(W.find_weights("predictor"), **hub)


#: HF_HUB_OFFLINE values and whether huggingface_hub counts them as offline
OFFLINE_VALUES = {"1": True, "ON": True, "yes": True, "True": True, "0": False, "off": False, "2": False, "no": False}


def test_offline_table_is_huggingface_hubs_own_parse():
    import json
    import subprocess
    import sys

    code = ("import importlib, json, os, sys; import huggingface_hub.constants as c; out = {}\n"
            "for v in json.loads(sys.argv[1]):\n"
            "    os.environ['HF_HUB_OFFLINE'] = v; out[v] = importlib.reload(c).HF_HUB_OFFLINE\n"
            "print(json.dumps(out))")
    run = subprocess.run([sys.executable, "-c", code, json.dumps(list(OFFLINE_VALUES))],
                         capture_output=True, text=True, check=True)
    assert json.loads(run.stdout) == OFFLINE_VALUES


@pytest.mark.parametrize("value,expected", OFFLINE_VALUES.items())
def test_offline_check_agrees_with_huggingface_hub(monkeypatch, value, expected):
    import huggingface_hub.constants as c

    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", not expected)
    assert W._hub_offline() is (not expected)  # huggingface_hub's flag, read at call time, is what it obeys
    monkeypatch.delattr(c, "HF_HUB_OFFLINE")
    assert W._hub_offline() is expected  # without the flag, the same parse of the variable


@pytest.mark.parametrize("message", ["Revision Not Found for url https://huggingface.co/x/y/resolve/v9",
                                     "Name or service not known " + "x" * 500])
def test_hub_failure_gives_the_exceptions_message_shortened(tmp_path, monkeypatch, message):
    import huggingface_hub

    def fail(**kwargs):
        raise OSError(message)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fail)
    with pytest.raises(FileNotFoundError) as err:
        W.find_weights("predictor", repo_id="org/pp-test", revision="v9", cache_dir=tmp_path)
    line = str(err.value).splitlines()[-1]
    assert f"OSError: {message[:25]}" in line and len(line) < 300
