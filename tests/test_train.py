"""Training: the command line, checkpoints, resuming, loadable weights."""

import json

import pytest
import torch

from pixelperfect_loss.train.__main__ import main
from pixelperfect_loss.data import RandomCrops
from pixelperfect_loss.nets import DistortionPredictor
from pixelperfect_loss.train.predictor import _Triplets, dihedral, map_loss, train_predictor
from pixelperfect_loss.weights import load_predictor, read_weights


def test_map_loss_balances_channels_and_is_zero_at_labels():
    labels = torch.zeros(2, 8, 8, 8)
    labels[:, 0, :4] = 0.5
    assert map_loss(labels, labels)[0].item() == 0.0
    loss, parts = map_loss(torch.zeros_like(labels), labels)
    # missing the labelled region costs its full value, however small the region
    assert loss.item() == pytest.approx(0.5 + 0.25, rel=1e-6) and parts["image"] == pytest.approx(0.25)


def test_map_loss_cross_term_counts_only_responses_under_another_channel():
    labels = torch.zeros(2, 8, 8, 8)
    labels[:, 3, :4] = 0.5  # brightness on the top half, nothing on the bottom half
    talk = labels.clone()
    talk[:, 4, :4] = 0.1  # contrast lights up under the brightness change: cross-talk
    stray = labels.clone()
    stray[:, 4, 4:] = 0.1  # contrast lights up on clean pixels: an error, but not cross-talk
    assert map_loss(labels, labels)[1]["cross"] == 0.0
    assert map_loss(talk, labels)[1]["cross"] == pytest.approx(0.1)
    assert map_loss(stray, labels)[1]["cross"] == 0.0
    # weighted in, the same error costs more under another channel; by default it is only logged
    assert map_loss(talk, labels, cross_weight=1.0)[0] > map_loss(stray, labels, cross_weight=1.0)[0]
    assert map_loss(talk, labels)[0] == pytest.approx(map_loss(stray, labels)[0].item())


def test_map_loss_overlap_weight_multiplies_the_error_where_channels_overlap_only():
    labels = torch.zeros(1, 8, 8, 8)
    labels[:, 3, :, :4] = 0.5  # brightness on the left half
    labels[:, 4, :4] = 0.5  # contrast on the top half: both on the top-left quarter
    faint_overlap, faint_alone = labels.clone(), labels.clone()
    faint_overlap[:, 4, :4, :4] = 0.1  # contrast hedged where brightness is labelled too
    faint_alone[:, 4, :4, 4:] = 0.1  # the same error where contrast is alone
    loss = {k: map_loss(p, labels)[0].item() for k, p in [("overlap", faint_overlap), ("alone", faint_alone)]}
    loss3 = {k: map_loss(p, labels, overlap_weight=3.0)[0].item() for k, p in [("overlap", faint_overlap),
                                                                             ("alone", faint_alone)]}
    assert loss["overlap"] == pytest.approx(loss["alone"])  # by default both cost the same
    assert loss3["alone"] == pytest.approx(loss["alone"])  # no overlap: unchanged
    # at weight 3 the overlap's labelled error (0.4 on 16 of 32 labelled contrast cells, image term unchanged) triples
    assert loss3["overlap"] - loss["overlap"] == pytest.approx(2 * 0.4 * 16 / 32, rel=1e-5)
    assert map_loss(labels, labels, overlap_weight=3.0)[0].item() == 0.0


def test_overlap_weight_counts_in_the_tuning_phase_only_and_is_recorded(tmp_path):
    kw = dict(steps=2, lr=2e-3, tune_steps=2, batch=2, crop=32, log_every=1, progress=False, device="cpu")
    train_predictor(None, tmp_path / "a", overlap_weight=3.0, **kw)
    train_predictor(None, tmp_path / "b", **kw)
    logs = [[json.loads(line) for line in (tmp_path / d / "predictor-log.jsonl").read_text().splitlines()]
            for d in "ab"]
    rows = [[r for r in log if "loss" in r] for log in logs]
    assert [r["loss"] for r in rows[0][:2]] == [r["loss"] for r in rows[1][:2]]  # first phase: bit for bit
    assert rows[0][2]["pixel"] > rows[1][2]["pixel"]  # tuning: overlapping cells weigh more
    assert read_weights(tmp_path / "a" / "predictor.safetensors")[1]["overlap_weight"] == "3.0"
    with pytest.raises(ValueError, match="overlap_weight: expected > 0, got 0"):
        train_predictor(None, tmp_path / "c", overlap_weight=0, **kw)
    # the command line passes it on
    assert main(["predictor", "--out", str(tmp_path / "cli"), "--steps", "1", "--tune-steps", "1", "--batch", "2",
                 "--crop", "32", "--overlap-weight", "3", "--no-progress", "--device", "cpu"]) == 0
    assert read_weights(tmp_path / "cli" / "predictor.safetensors")[1]["overlap_weight"] == "3.0"


def test_tuning_phase_weighs_the_cross_term_at_its_own_learning_rate(tmp_path):
    train_predictor(None, tmp_path, steps=3, lr=2e-3, tune_steps=3, tune_lr=1e-4, cross_weight=3.0, batch=2, crop=32,
                    log_every=1, progress=False, device="cpu")
    log = [json.loads(line) for line in (tmp_path / "predictor-log.jsonl").read_text().splitlines()]
    rows = [r for r in log if "loss" in r]
    assert [r["step"] for r in rows] == list(range(6)) and log[-1]["step"] == 6
    for r in rows:
        weight = 3.0 if r["step"] >= 3 else 0.0  # the cross term counts in the second phase only
        assert r["loss"] == pytest.approx(r["pixel"] + weight * r["cross"] + r["image"], rel=1e-5)
    from pixelperfect_loss.train.common import cosine_lr

    # the second phase restarts its warm-up towards its own, lower peak
    assert [r["lr"] for r in rows] == pytest.approx([cosine_lr(s, 3, 2e-3) for s in range(3)] +
                                                    [cosine_lr(s, 3, 1e-4) for s in range(3)])
    assert load_predictor(tmp_path / "predictor.safetensors")  # written after both phases
    with pytest.raises(ValueError, match="tune_steps"):
        train_predictor(None, tmp_path, steps=1, tune_steps=-1, progress=False)


def test_tuning_phase_belongs_to_the_full_recipe():
    from pixelperfect_loss.train.__main__ import TUNE, tune_steps

    assert tune_steps("full", None, None) == TUNE["full"] > 0  # the shipped recipe ends with it
    assert tune_steps("quick", None, None) == 0 and tune_steps("full", 40, None) == 0  # smoke runs and --steps: none
    assert tune_steps("full", 40, 7) == 7


def test_the_shipped_weights_were_made_by_the_default_full_recipe():
    # the model card's one command must re-make the packaged weights: its settings are the defaults
    from pixelperfect_loss.train.__main__ import (CROSS_WEIGHT, LR, OVERLAP_WEIGHT, RECIPES, REUSE, TUNE, TUNE_LR,
                                                  build_parser)
    from pixelperfect_loss.weights import find_weights, read_weights

    _, meta = read_weights(find_weights("predictor"))
    steps, batch, crop = RECIPES["predictor"]["full"]
    keys = ("steps", "batch", "crop", "lr", "tune_steps", "tune_lr", "cross_weight", "reuse", "seed", "hue", "stats",
            "overlap_weight")
    args = build_parser().parse_args([])
    assert {k: meta.get(k) for k in keys} == {
        "steps": str(steps), "batch": str(batch), "crop": str(crop), "lr": str(LR), "tune_steps": str(TUNE["full"]),
        "tune_lr": str(TUNE_LR), "cross_weight": str(CROSS_WEIGHT), "reuse": str(REUSE), "seed": str(args.seed),
        "hue": str(args.hue), "stats": str(args.stats), "overlap_weight": str(OVERLAP_WEIGHT)}
    from pixelperfect_loss.train.scorer import P_OTHER

    _, meta = read_weights(find_weights("scorer"))
    assert (meta["steps"], meta["batch"], meta["crop"]) == tuple(map(str, RECIPES["scorer"]["full"]))
    assert (meta["p_other"], meta["seed"]) == (str(P_OTHER), "0")


def test_command_line_and_function_share_the_first_phase_learning_rate():
    import inspect

    from pixelperfect_loss.train.__main__ import LR, build_parser
    from pixelperfect_loss.train.predictor import train_predictor

    assert build_parser().parse_args([]).lr == LR == inspect.signature(train_predictor).parameters["lr"].default
    # and the network: the shipped one (hue inputs and whole-image statistics) by default, in the command, the
    # function and the class; --no-hue / --no-stats build v6's
    sig = inspect.signature(train_predictor).parameters
    for name in ("hue", "stats"):
        assert getattr(build_parser().parse_args([]), name) is True is sig[name].default
        assert getattr(DistortionPredictor(), name) is True
        assert getattr(build_parser().parse_args([f"--no-{name}"]), name) is False


def test_dihedral_gives_eight_distinct_exact_transforms():
    x = torch.rand(1, 2, 5, 5)
    outs = [dihedral(x, k) for k in range(8)]
    assert torch.equal(outs[0], x)
    assert len({tuple(o.flatten().tolist()) for o in outs}) == 8
    assert torch.equal(dihedral(dihedral(x, 1), 3), x)


def test_reused_engine_batches_are_rotated_copies_with_their_labels():
    data = RandomCrops(None, size=32, seed=0)
    once, reused = _Triplets(data, 2, seed=0, rank=0, world=1), _Triplets(data, 2, seed=0, rank=0, world=1, reuse=4)
    base = once(1)  # engine batch 1 feeds steps 4..7 when reused 4 times
    for step in range(4, 8):
        for a, b in zip(reused(step), base):
            assert torch.equal(a, dihedral(b, step - 4))
    ref, img, labels = reused(6)
    still = (labels == 0).all(1, keepdim=True).expand_as(ref)
    assert torch.allclose(img[still], ref[still], atol=1e-6)  # unlabelled pixels stay untouched


def test_bare_command_defaults_train_on_embedded_images_and_write_loadable_weights(tmp_path):
    assert main(["--steps", "3", "--batch", "2", "--crop", "64", "--out", str(tmp_path), "--no-progress"]) == 0
    net = load_predictor(tmp_path)
    x = torch.rand(1, 3, 32, 32)
    assert net(x, x).abs().max() == 0
    log = [json.loads(line) for line in (tmp_path / "predictor-log.jsonl").read_text().splitlines()]
    assert log[0]["step"] == 0 and all(torch.isfinite(torch.tensor(r["loss"])) for r in log if "loss" in r)
    from pixelperfect_loss.metric import PixelPerfect

    assert PixelPerfect(tmp_path).score(x, x).item() == 0.0  # the scorer was trained and written too


def test_resume_after_interruption_matches_an_uninterrupted_run(tmp_path):
    kw = dict(steps=6, batch=2, crop=32, ckpt_every=2, progress=False, reuse=2, device="cpu")  # bit-exact on the CPU
    full = train_predictor(None, tmp_path / "a", **kw)
    train_predictor(None, tmp_path / "b", stop_after=3, **kw)
    assert torch.load(tmp_path / "b" / "predictor.ckpt", weights_only=True)["step"] == 3
    assert not (tmp_path / "b" / "predictor.safetensors").exists()
    resumed = train_predictor(None, tmp_path / "b", resume=True, **kw)
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    assert not list((tmp_path / "b").glob("*.tmp"))  # atomic writes leave no partial files


def test_resume_refuses_a_checkpoint_of_another_recipe(tmp_path, capsys):
    kw = dict(steps=2, batch=1, crop=32, progress=False, device="cpu")
    train_predictor(None, tmp_path, stop_after=1, **kw)
    with pytest.raises(ValueError, match="batch=1.*batch=2"):
        train_predictor(None, tmp_path, resume=True, **{**kw, "batch": 2})
    with pytest.raises(ValueError, match="lr="):
        train_predictor(None, tmp_path, resume=True, lr=5e-4, **kw)
    assert main(["predictor", "--out", str(tmp_path), "--resume", "--steps", "3", "--batch", "1", "--crop", "32",
                 "--no-progress", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "steps=2" in err and "steps=3" in err and "Traceback" not in err


def test_resume_may_change_the_tuning_phase_only_before_it_starts(tmp_path):
    kw = dict(steps=2, batch=1, crop=32, progress=False, device="cpu")
    train_predictor(None, tmp_path, stop_after=2, tune_steps=2, cross_weight=5.0, **kw)  # at the end of phase 1
    train_predictor(None, tmp_path, resume=True, stop_after=3, tune_steps=2, cross_weight=10.0, **kw)  # allowed
    with pytest.raises(ValueError, match="cross_weight=10.0.*cross_weight=5.0"):  # tuning has begun
        train_predictor(None, tmp_path, resume=True, tune_steps=2, cross_weight=5.0, **kw)


def test_resume_without_checkpoint_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train_predictor(None, tmp_path, steps=2, batch=1, crop=32, resume=True, progress=False)


def test_bad_arguments(capsys):
    assert main(["--crop", "40", "--steps", "1"]) == 2
    assert "--crop" in capsys.readouterr().err
    assert main(["--cross-weight", "-1", "--steps", "1"]) == 2
    assert "--cross-weight must be >= 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["scorer-that-does-not-exist"])


def test_background_workers_give_the_same_training(tmp_path):
    kw = dict(steps=3, batch=2, crop=32, progress=False, device="cpu")
    a = train_predictor(None, tmp_path / "a", workers=0, **kw)
    b = train_predictor(None, tmp_path / "b", workers=2, **kw)
    for (k, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), k


def _step_and_worker(step):
    info = torch.utils.data.get_worker_info()
    return step, -1 if info is None else info.id


@pytest.mark.parametrize("start", [0, 3])  # a resumed run may start inside a block
def test_stream_keeps_each_block_of_steps_in_one_worker(start):
    """With --reuse r, a worker that made step s's engine batch must also serve the steps that reuse it;
    with every k-th step per worker, each worker made its own copy and reuse saved nothing."""
    from pixelperfect_loss.train.common import stream

    got = list(stream(_step_and_worker, start, 11, workers=2, group=2))
    assert [s for s, _ in got] == list(range(start, 11))
    for (s, w), (s2, w2) in zip(got, got[1:]):
        assert (w == w2) == (s // 2 == s2 // 2), got  # the same worker exactly within a block of 2
    assert [s for s, _ in stream(_step_and_worker, start, 11, workers=0, group=3)] == list(range(start, 11))


def test_killed_training_resumes_without_losing_finished_steps(tmp_path):
    """SIGKILL a training process after a checkpoint, resume it, and get the uninterrupted result."""
    import os
    import signal
    import subprocess
    import sys
    import time

    args = ["--steps", "40", "--batch", "2", "--crop", "32", "--ckpt-every", "2", "--no-progress",
            "--threads", "1", "--workers", "0", "--device", "cpu"]
    run = [sys.executable, "-m", "pixelperfect_loss.train", "predictor"]
    proc = subprocess.Popen(run + args + ["--out", str(tmp_path / "killed")])
    ckpt = tmp_path / "killed" / "predictor.ckpt"
    deadline = time.time() + 120
    while time.time() < deadline and not (ckpt.exists() and torch.load(ckpt, weights_only=True)["step"] >= 6):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = torch.load(ckpt, weights_only=True)["step"]
    assert 6 <= done < 40  # killed mid-run, with a readable checkpoint
    subprocess.run(run + args + ["--out", str(tmp_path / "killed"), "--resume"], check=True, timeout=300)
    subprocess.run(run + args + ["--out", str(tmp_path / "clean")], check=True, timeout=300)
    a = load_predictor(tmp_path / "killed").state_dict()
    b = load_predictor(tmp_path / "clean").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_distributed_ranks_draw_different_samples():
    from pixelperfect_loss.data import RandomCrops
    from pixelperfect_loss.train.predictor import _Triplets

    data = RandomCrops(size=32, seed=0)
    r0 = _Triplets(data, 2, 0, rank=0, world=2)(5)
    r1 = _Triplets(data, 2, 0, rank=1, world=2)(5)
    assert not torch.equal(r0[0], r1[0]) and not torch.equal(r0[2], r1[2])
    assert all(torch.equal(a, b) for a, b in zip(r0, _Triplets(data, 2, 0, rank=0, world=2)(5)))


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def test_training_device_defaults_and_errors(monkeypatch):
    from pixelperfect_loss.train.common import training_device

    want = "cuda" if torch.cuda.is_available() else "cpu"
    assert training_device().type == want
    assert training_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="device: expected 'cpu', 'cuda' or 'cuda:N', got 'tpu'"):
        training_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            training_device("cuda")
    assert main(["--device", "quantum", "--steps", "1"]) == 2


@pytest.mark.parametrize("device", DEVICES)
def test_training_on_a_device_writes_weights_that_load_on_the_cpu(device, tmp_path):
    kw = dict(steps=4, batch=2, crop=32, ckpt_every=2, progress=False, device=device)
    net = train_predictor(None, tmp_path / "a", **kw)
    assert next(net.parameters()).device.type == device
    loaded = load_predictor(tmp_path / "a")  # CPU tensors, strictly loaded
    for k, v in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v.cpu()), k
    from pixelperfect_loss.train.scorer import train_scorer

    scorer = train_scorer(None, tmp_path / "a", predictor_path=tmp_path / "a", steps=3, batch=2, k=3, crop=32,
                          progress=False, device=device)
    assert next(scorer.parameters()).device.type == device
    from pixelperfect_loss.metric import PixelPerfect

    x = torch.rand(1, 3, 32, 32)
    assert PixelPerfect(tmp_path / "a").score(x, x).item() == 0.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_gpu_training_sees_the_cpu_data_and_resumes(tmp_path):
    data = RandomCrops(None, size=32)
    cpu = _Triplets(data, 2, 0, 0, 1)(5)
    gpu = _Triplets(data, 2, 0, 0, 1, device="cuda")(5)
    for a, b in zip(cpu, gpu):
        assert b.device.type == "cuda"
        assert torch.allclose(a, b.cpu(), atol=1e-4)  # the same triplets: random draws stay on the CPU
    kw = dict(steps=6, batch=2, crop=32, ckpt_every=2, progress=False, device="cuda")
    full = train_predictor(None, tmp_path / "a", **kw)
    train_predictor(None, tmp_path / "b", stop_after=3, **kw)
    resumed = train_predictor(None, tmp_path / "b", resume=True, **kw)
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-4), k  # GPU kernels need not be bit-exact between runs


def test_engine_workers_default_by_device(monkeypatch):
    import os

    from pixelperfect_loss.train.__main__ import WORKERS, default_workers

    assert default_workers(torch.device("cpu")) == WORKERS == 0
    # on a GPU: half the cores, at least 1 and at most 6
    for cores, workers in ((None, 1), (1, 1), (2, 1), (5, 2), (16, 6), (64, 6)):
        monkeypatch.setattr(os, "cpu_count", lambda: cores)
        assert default_workers(torch.device("cuda", 0)) == workers, cores
    assert main(["--workers", "-1", "--steps", "1"]) == 2


@pytest.mark.parametrize("hue", [False, True])
def test_hue_option_trains_a_network_with_or_without_the_hue_inputs_and_resume_keeps_it(tmp_path, hue):
    from pixelperfect_loss.weights import load_predictor, read_weights

    train_predictor(None, tmp_path, steps=2, batch=2, crop=32, hue=hue, progress=False)
    assert load_predictor(tmp_path / "predictor.safetensors").hue is hue
    assert read_weights(tmp_path / "predictor.safetensors")[1]["hue"] == str(hue)
    with pytest.raises(ValueError, match="hue"):  # a checkpoint of one network cannot continue as the other
        train_predictor(None, tmp_path, steps=2, batch=2, crop=32, hue=not hue, resume=True, progress=False)


@pytest.mark.parametrize("flag", ["--stats", "--no-stats"])
def test_stats_option_trains_a_network_with_or_without_the_statistics_and_resume_keeps_it(tmp_path, flag):
    from pixelperfect_loss.weights import load_predictor, read_weights

    stats = flag == "--stats"
    assert main(["predictor", "--out", str(tmp_path), "--steps", "2", "--batch", "2", "--crop", "32", flag,
                 "--no-progress", "--workers", "0"]) == 0
    assert load_predictor(tmp_path / "predictor.safetensors").stats is stats
    assert read_weights(tmp_path / "predictor.safetensors")[1]["stats"] == str(stats)
    with pytest.raises(ValueError, match="stats"):  # a checkpoint of one network cannot continue as the other
        train_predictor(None, tmp_path, steps=2, batch=2, crop=32, stats=not stats, resume=True, progress=False)


def test_checkpoints_from_before_the_hue_entry_resume_as_trained_without_it():
    from pixelperfect_loss.train.common import check_resume_config

    old = {"steps": 10, "batch": 2}  # written before the "hue" entry existed: trained without the hue inputs
    check_resume_config(old, {"steps": 10, "batch": 2, "hue": False}, 4)
    with pytest.raises(ValueError, match="hue=False, this run asks for hue=True"):
        check_resume_config(old, {"steps": 10, "batch": 2, "hue": True}, 4)
    check_resume_config(old, {"steps": 10, "batch": 2}, 4)  # a config without the entry (the scorer's) is left alone


BASE = ["--steps", "1", "--batch", "1", "--crop", "32", "--no-progress", "--device", "cpu"]


@pytest.mark.parametrize("args, names", [
    (["--images", "/nope"], "--images: no such folder: /nope"),
    (["--images", "{empty}"], "--images: no PNG/JPEG/TIFF"),
    (["--crop", "512"], "--crop 512: larger than the image "),  # the embedded photos are 256 x 384
    (["scorer", "--predictor", "/nope.safetensors"], "--predictor: "),
    (["--lr", "-1"], "--lr must be a finite number > 0, got -1.0"),
    (["--lr", "inf"], "--lr must be a finite number > 0, got inf"),  # trained to NaN weights, exit 0
    (["--tune-lr", "0"], "--tune-lr must be a finite number > 0"),
    (["--cross-weight", "inf"], "--cross-weight must be a finite number, got inf"),
    (["--overlap-weight", "0"], "--overlap-weight must be a finite number > 0, got 0.0"),
    (["--seed", "5000000000"], "--seed must be 0 to 2147483647"),  # crashed mid-run in the step generators
    (["--width", "1"], "--width must be >= 2, got 1"),  # width 1 leaves layers without channels
    (["--threads", "-1"], "--threads must be >= 1"),
    (["--ckpt-every", "0"], "--ckpt-every must be >= 1, got 0"),
])
def test_bad_user_input_exits_2_with_one_line(args, names, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    args = [a.format(empty=tmp_path / "empty") for a in args]
    assert main(BASE + ["--out", str(tmp_path / "out")] + args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: " + names) and err.count("\n") == 1, err
    if "--crop" in args:
        assert ".png (256 pixels on its short side); use --crop 256 or less" in err  # names the file and a fix
    assert not (tmp_path / "out" / "predictor.ckpt").exists()


def test_internal_errors_still_show_a_traceback(monkeypatch):
    import pixelperfect_loss.train.predictor as tp

    def bug(*args, **kwargs):
        raise ValueError("an internal bug")

    monkeypatch.setattr(tp, "train_predictor", bug)
    with pytest.raises(ValueError, match="an internal bug"):
        main(["predictor"] + BASE)


def test_intervals_must_be_positive(tmp_path):
    from pixelperfect_loss.train.scorer import train_scorer

    for every in ("ckpt_every", "log_every"):
        with pytest.raises(ValueError, match=every):
            train_predictor(None, tmp_path, steps=2, batch=1, crop=32, progress=False, **{every: 0})
        with pytest.raises(ValueError, match=every):
            train_scorer(None, tmp_path, steps=2, batch=1, crop=32, progress=False, **{every: 0})
    assert not list(tmp_path.iterdir())  # refused before any step


def test_resume_refuses_other_images_but_not_another_spelling_of_the_folder(tmp_path, monkeypatch, capsys):
    import shutil

    from pixelperfect_loss.data import embedded_image_paths

    for name, photo in zip("ab", embedded_image_paths()):
        (tmp_path / name).mkdir()
        shutil.copy(photo, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    kw = dict(steps=3, batch=1, crop=32, progress=False, device="cpu")
    train_predictor("a", "out", stop_after=1, **kw)
    train_predictor(tmp_path / "b" / ".." / "a", "out", resume=True, stop_after=2, **kw)  # the same folder
    for other in ("b", None):  # another folder, the embedded photos
        with pytest.raises(ValueError, match="--resume: --images is not what the checkpoint was trained on"):
            train_predictor(other, "out", resume=True, **kw)
    assert main(["predictor", "--images", "b", "--out", "out", "--resume", "--steps", "3"] + BASE[2:]) == 2
    assert "--images is not what" in capsys.readouterr().err


def test_scorer_refuses_to_resume_on_another_predictor(tmp_path):
    import shutil

    from pixelperfect_loss.train.scorer import train_scorer
    from pixelperfect_loss.weights import find_weights, save_weights

    shutil.copy(find_weights("predictor"), tmp_path / "same.safetensors")
    other = load_predictor()
    with torch.no_grad():
        next(other.parameters()).add_(1e-3)
    save_weights(other, tmp_path / "other.safetensors", {"width": other.width})
    kw = dict(steps=2, batch=1, k=2, crop=32, progress=False, device="cpu")
    train_scorer(None, tmp_path, predictor_path=None, **kw)
    train_scorer(None, tmp_path, predictor_path=tmp_path / "same.safetensors", resume=True, **kw)  # same content
    with pytest.raises(ValueError, match="--resume: --predictor is not what the checkpoint was trained on"):
        train_scorer(None, tmp_path, predictor_path=tmp_path / "other.safetensors", resume=True, **kw)


def test_loss_log_has_each_step_once_after_a_kill_and_restarts_with_a_fresh_run(tmp_path):
    import os

    kw = dict(steps=10, batch=1, crop=32, ckpt_every=4, log_every=1, progress=False, device="cpu")
    log = tmp_path / "predictor-log.jsonl"
    train_predictor(None, tmp_path, stop_after=4, **kw)
    ckpt = torch.load(tmp_path / "predictor.ckpt", weights_only=True)
    train_predictor(None, tmp_path, resume=True, stop_after=7, **kw)
    torch.save({**ckpt, "seconds": 1000.0}, tmp_path / "predictor.ckpt")  # killed in step 7: back to step 4
    with log.open("a") as f:
        f.write('{"step": 7, "lo')  # a line torn by the kill
    train_predictor(None, tmp_path, resume=True, **kw)
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(11))
    assert all((r["seconds"] >= 1000) == (r["step"] >= 4) for r in rows[:-1])  # the clock goes on from the checkpoint
    train_predictor(None, tmp_path, **kw)  # a fresh run into the same folder starts a new log
    assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == list(range(11))
    shared = 0o666 & ~os.umask(os.umask(0o022))  # as a newly created file
    for name in ("predictor.ckpt", "predictor.safetensors"):
        assert os.stat(tmp_path / name).st_mode & 0o777 == shared, name


@pytest.mark.parametrize("mask", [0o027, 0o002])
def test_checkpoints_and_weights_get_the_permissions_of_the_umask(mask, tmp_path):
    import os

    from pixelperfect_loss.train.common import atomic_save, publish_weights, umask

    old = os.umask(mask)
    try:
        assert umask() == mask and umask() == mask  # read without changing it
        atomic_save({"a": torch.zeros(1)}, tmp_path / "x.ckpt")
        publish_weights(torch.nn.Linear(2, 2), tmp_path / "x.safetensors", {})
    finally:
        os.umask(old)
    for name in ("x.ckpt", "x.safetensors"):
        assert os.stat(tmp_path / name).st_mode & 0o777 == 0o666 & ~mask, name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.ckpt", "x.safetensors"]  # no temporary files left


@pytest.mark.parametrize("content", ["garbage", "empty", "truncated"])
def test_unreadable_checkpoint_is_one_clear_line(content, tmp_path, capsys):
    import io

    buf = io.BytesIO()
    torch.save({"step": 1}, buf)
    data = {"garbage": b"not a checkpoint" * 50, "empty": b"", "truncated": buf.getvalue()[:200]}[content]
    (tmp_path / "predictor.ckpt").write_bytes(data)
    assert main(["predictor", "--out", str(tmp_path), "--resume"] + BASE) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(tmp_path / "predictor.ckpt") in err and "delete it" in err, err
