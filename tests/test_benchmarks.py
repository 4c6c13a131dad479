"""The benchmark suite runs end to end in its --quick mode (tiny settings, nothing written)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pixelperfect_loss.data import embedded_images

ROOT = Path(__file__).resolve().parent.parent
Image = pytest.importorskip("PIL.Image")
pytest.importorskip("pytorch_msssim")


def _photo_folder(path: Path) -> Path:
    path.mkdir()
    for i, x in enumerate(embedded_images()):
        Image.fromarray((x.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)).save(path / f"{i}.png")
    return path


def test_quick_suite_runs_every_benchmark_and_writes_nothing(tmp_path):
    photos = _photo_folder(tmp_path / "photos")
    results = ROOT / "benchmarks" / "RESULTS.md"
    before = results.read_bytes()
    run = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--eval", str(photos), "--train", str(photos),
                          "--runs", str(tmp_path / "runs")], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    summary = run.stdout[run.stdout.rindex("| benchmark |"):]
    for name in ("predictor_speed", "engine_speed", "loss_speed", "predictor_accuracy", "scorer_accuracy",
                 "downstream"):
        assert f"| {name} |" in summary and "FAILED" not in summary
    assert "Spearman" in run.stdout and "cross-talk" in run.stdout.lower()  # the accuracy tables were printed
    assert results.read_bytes() == before
    assert (tmp_path / "runs" / "metrics-denoise.json").is_file()


def test_spearman_ranks_ties_by_their_mean_rank():
    from benchmarks.scorer_accuracy import _ranks, _spearman

    assert _ranks(np.array([3.0, 1.0, 3.0, 2.0])).tolist() == [3.5, 1.0, 3.5, 2.0]
    assert np.isnan(_ranks(np.array([1.0, np.nan]))).all()
    assert _spearman(np.array([-1.0, -2.0, -3.0, -4.0, -5.0])) == pytest.approx(1.0)  # falls at every step
    assert _spearman(np.array([-2.0, -1.0, -3.0, -4.0, -5.0])) == pytest.approx(0.9)  # one adjacent swap
    # a tie (two identical versions): ranks 4.5, 4.5, 3, 2, 1 against 5..1 correlate by sqrt(9.5 / 10)
    assert _spearman(np.array([0.0, 0.0, -1.0, -2.0, -3.0])) == pytest.approx(np.sqrt(0.95))


def test_scorer_table_separates_at_least_from_within_tolerance():
    from benchmarks.scorer_accuracy import TOL, table

    def sets(ours: float, peer: float) -> list[dict[str, float]]:
        return [{"ours": ours, "PSNR": peer, "SSIM": peer - 0.1, "MS-SSIM": peer - 0.2}]

    results = {"tie": sets(1.0, 1.0), "close": sets(0.994 - TOL / 2, 0.994), "far": sets(0.9, 1.0)}
    results["ahead"] = sets(1.0, 0.98)
    md, strict, ok, n, better = table(results, ["tie", "close", "far", "ahead"])
    assert (strict, ok, n, better) == (2, 3, 4, 1)
    assert f"| within {TOL} |" in md and "| ✗ |" in md


def test_downstream_verdict_words_a_psnr_gain_and_a_gamed_loss():
    from benchmarks.downstream import verdict

    def result(psnr, hf):
        row = dict(psnr=psnr, ssim=0.8, blur=0.0, noise=0.0, other=0.0, hf_ratio=hf, images=1)
        return {"a": row}

    report = {"task": "denoise", "folders": ["a"],
              "results": {"input": result(20.0, 2.0), "l1": result(27.0, 0.4), "gain": result(27.2, 0.6),
                          "drop": result(25.5, 0.6)}}
    _, lines = verdict(report, {"gain": "gain", "drop": "drop"})
    gain, drop = lines
    assert "PSNR +0.20 dB" in gain and "**supported**" in gain and "with no PSNR cost" in gain
    assert "PSNR -1.50 dB" in drop and "**gamed**" in drop


def test_downstream_seed_table_counts_the_gamed_seeds():
    from benchmarks.downstream import seed_rows

    def report(seed, blur, both):
        def row(psnr, hf):
            return {"a": dict(psnr=psnr, ssim=0.8, blur=0.0, noise=0.0, other=0.0, hf_ratio=hf, images=1)}
        return {"config": {"seed": seed}, "results": {"l1": row(27.0, 0.4), "blur": row(*blur), "blur+noise": row(*both)}}

    rows, gamed = seed_rows([report(0, (27.1, 0.5), (26.8, 0.7)), report(1, (26.9, 0.6), (24.5, 0.8)),
                             report(2, (27.0, 0.5), (26.9, 1.5))], ["a"], {"blur": "B", "blur+noise": "BN"})
    assert gamed == {"blur": 0, "blur+noise": 2}  # a 2.5 dB drop, and an output noisier than the ground truth
    assert rows[0].startswith("| 0 | B | 27.00 | 27.10 | +0.10 |") and "**gamed**" not in rows[0]
    assert rows[1].startswith("| 0 | BN |") and "**gamed**" not in rows[1]
    assert "| -2.50 |" in rows[3] and rows[3].endswith("**gamed** |") and rows[5].endswith("**gamed** |")

    # a loss trained with another weight: each seed against L1 of that same seed
    swept = {1: report(1, (0, 1), (25.9, 0.7))["results"]["blur+noise"], 0: report(0, (0, 1), (26.5, 0.6))["results"]["blur+noise"]}
    l1 = report(0, (27.1, 0.5), (26.8, 0.7))
    l1b = report(1, (26.9, 0.6), (24.5, 0.8))
    l1b["results"]["l1"]["a"]["psnr"] = 27.2
    rows, gamed = seed_rows([l1, l1b], ["a"], {"blur": "B", "blur+noise": "BN"}, [("BN, lambda 0.05", swept)])
    assert gamed == {"blur": 0, "blur+noise": 1, "BN, lambda 0.05": 1}
    assert rows[4].startswith("| 0 | BN, lambda 0.05 | 27.00 | 26.50 | -0.50 |") and "**gamed**" not in rows[4]
    assert rows[5].startswith("| 1 | BN, lambda 0.05 | 27.20 | 25.90 | -1.30 |") and rows[5].endswith("**gamed** |")


def test_unit_watch_finds_silent_and_runaway_units():
    import torch

    from benchmarks.predictor_accuracy import UnitWatch
    from pixelperfect_loss.nets import DistortionPredictor

    torch.manual_seed(0)
    net = DistortionPredictor().eval()
    a, b = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)

    def summary() -> str:
        watch = UnitWatch(net)
        with torch.no_grad():
            net(a, b)
        watch.remove()
        return watch.summary()

    healthy = summary()
    assert "Silent SiLU units (|value| < 0.001 on every cell): 0 of" in healthy
    assert "past the bound on more than half of the cells in some batch: 0 of 64" in healthy
    values = 2 * 64 * (64 // 16) ** 2 * 2  # batch 2, 64 features at 1/16, the pair head run in both orders
    assert f", 0 of {values} values past it;" in healthy
    with torch.no_grad():
        net.fuse8[1][0].bias[:3] = -1e4  # three units of fuse8's last layer far on SiLU's flat side
        net.fuse16[1][0].bias[:5] = 1e3  # five 1/16 pair features far past the bound
    broken = summary()
    assert "past the bound on more than half of the cells in some batch: 5 of 64" in broken
    assert f", {values * 5 // 64} of {values} values past it;" in broken
    assert "fuse8.1.1 3 of 16" in broken


def test_engine_metrics_splits_sign_errors_by_company_and_size(monkeypatch):
    import torch

    import benchmarks.predictor_accuracy as pa
    from pixelperfect_loss.nets import DistortionPredictor

    lab = torch.zeros(1, 8, 4, 4)
    lab[:, 0] = 0.5                      # blur everywhere
    lab[:, 1, :2] = 0.5                  # noise on the top half too
    pred = lab.clone()
    pred[:, 0, :2] = -0.5                # blur's sign wrong, with a large map, where noise is labelled too
    pred[:, 1, 0] = -0.01                # noise's sign wrong on one row, with a faint map
    monkeypatch.setattr(pa, "make_triplets", lambda clean, g: (clean, clean, lab))
    monkeypatch.setattr(pa, "predict", lambda net, ref, img: pred)
    text, metrics = pa.engine_metrics(DistortionPredictor(), torch.zeros(1, 3, 4, 4), 1)
    row = {line.split(" | ")[0].strip("| "): line.split(" | ")[1:] for line in text.splitlines() if line.startswith("| ")}
    # columns: MAE, sign accuracy, sign alone at the cell, sign with other channels there, share of sign errors
    # with |map| < 0.05, labelled pixels
    assert row["blur"][1:5] == ["50.0%", "100.0%", "0.0%", "0.0%"]
    assert row["noise"][1:5] == ["50.0%", "-", "50.0%", "100.0%"]
    assert metrics["sign_accuracy"] == 0.5


def test_centre_crops_skip_photos_smaller_than_the_crop(tmp_path):
    from PIL import Image

    import benchmarks.predictor_accuracy as pa

    Image.new("RGB", (280, 300), (128, 90, 40)).save(tmp_path / "a.png")
    Image.new("RGB", (250, 300), (128, 90, 40)).save(tmp_path / "b.png")  # narrower than the crop
    crops, small = pa.centre_crops(str(tmp_path), None)
    assert crops.shape == (1, 3, pa.CROP, pa.CROP) and small == ["b.png"]
    (tmp_path / "a.png").unlink()
    with pytest.raises(ValueError, match="--data: no photo"):
        pa.centre_crops(str(tmp_path), None)


def test_independent_cases_that_change_no_pixel_are_not_counted():
    import torch

    import benchmarks.predictor_accuracy as pa
    from pixelperfect_loss.nets import DistortionPredictor

    torch.manual_seed(0)
    colour = torch.rand(3, 32, 32)
    grey = colour.mean(0, keepdim=True).expand(3, -1, -1)  # a saturation change leaves it as it is
    text, metrics = pa.independent(DistortionPredictor(width=8).eval(), torch.stack([colour, grey]))
    cases = len(pa.independent_cases(np.random.default_rng(0)))
    counted = int(text.split("Right channel strongest and right sign: **")[1].split(" of ")[1].split(" ")[0])
    skipped = int(text.split("Not counted: ")[1].split(" ")[0])
    # Pillow Color and OpenCV HSV saturation, up and down, on the grey photo; nothing on the colour one
    assert skipped == 4 and counted + skipped == 2 * cases
    shown = float(text.split("Right channel strongest and right sign: **")[1].split("%")[0])
    assert metrics["independent_right"] * 100 == pytest.approx(shown, abs=0.05)  # the fraction the text shows


def test_time_interleaved_alternates_the_calls_and_returns_one_median_each(monkeypatch):
    from benchmarks.common import time_interleaved

    import time

    calls = []
    clock = iter(range(100))  # a fake clock that ticks 1 per reading, 2 more inside every "a"
    monkeypatch.setattr(time, "perf_counter", lambda: next(clock))
    times = time_interleaved([lambda: (calls.append("a"), next(clock), next(clock)), lambda: calls.append("b")], 3)
    assert times == [3, 1]  # each call's own readings, the median of its rounds
    assert calls == ["a", "a", "b", "b"] + ["a", "b"] * 2  # a warm-up call of each in the first round only


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_results_of_other_weights_are_printed_not_published(tmp_path, monkeypatch, capsys, how):
    from benchmarks import common

    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n")
    monkeypatch.setattr(common, "RESULTS", results)
    monkeypatch.delenv(common.ENV_VAR, raising=False)
    if how == "environment":
        monkeypatch.setenv(common.ENV_VAR, "runs/candidate")
    weights = "runs/candidate" if how == "argument" else None
    assert common.weights_label(weights) == "runs/candidate"
    assert not common.write_weights_section("scorer_accuracy", "numbers", "cmd", weights)
    assert results.read_text() == "# Benchmark results\n"
    assert "not written" in capsys.readouterr().out
    monkeypatch.delenv(common.ENV_VAR, raising=False)
    assert common.weights_label(None) == "packaged"
    assert common.write_weights_section("scorer_accuracy", "numbers", "cmd", None)
    assert "<!-- begin:scorer_accuracy -->" in results.read_text() and "numbers" in results.read_text()
