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
