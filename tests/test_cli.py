"""The pixelperfect command line, end to end on temporary files."""

import json

import kornia_rs
import numpy as np
import pytest
import torch

from pixelperfect_loss import CHANNELS
from pixelperfect_loss.cli import build_parser, main
from pixelperfect_loss.data import embedded_image_paths, read_image
from pixelperfect_loss.engine import operators as op


def _save(x: torch.Tensor, path):
    pixels = np.ascontiguousarray(x.permute(1, 2, 0).numpy() * 255 + 0.5, dtype=np.uint8)
    kornia_rs.io.write_image_png_u8(str(path), pixels, "rgb")
    return str(path)


def _png_pixels(path) -> np.ndarray:
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    return np.asarray(kornia_rs.io.read_image(str(path)))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("imgs")
    ref = read_image(embedded_image_paths()[0])[:, :96, :128]
    blur = op.gaussian_blur(ref[None], torch.tensor([0.6]))[0]
    noise = op.gaussian_noise(ref[None], torch.tensor([0.3]), torch.Generator().manual_seed(0))[0]
    (d / "refs").mkdir()
    (d / "out").mkdir()
    (d / "out" / "folder.png").mkdir()  # named like an image: not listed
    paths = {"ref": _save(ref, d / "ref.png"), "blur": _save(blur, d / "blur.png"), "noise": _save(noise, d / "noise.png")}
    _save(ref, d / "refs" / "a.png")
    _save(ref, d / "refs" / "b.png")
    _save(blur, d / "out" / "a.png")
    _save(noise, d / "out" / "b.png")
    paths["dir"] = d
    return paths


def test_score_table_and_json(files, capsys):
    assert main(["score", files["ref"], files["blur"], files["ref"]]) == 0
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert "rank" in lines[0] and lines[1].split()[1] == files["ref"]  # the identical image is best
    assert main(["score", files["ref"], files["blur"], files["noise"], "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
    assert all(r["score"] < 0 for r in rows) and "blur" in rows[0]["report"]


def test_score_folders_paired_by_name(files, capsys):
    d = files["dir"]
    assert main(["score", "--ref-dir", str(d / "refs"), "--dir", str(d / "out"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert sorted(r["image"].rsplit("/", 1)[-1] for r in rows) == ["a.png", "b.png"]


def test_maps_figure_is_a_png_of_the_expected_size(files, tmp_path, capsys):
    out = tmp_path / "maps.png"
    assert main(["maps", files["ref"], files["blur"], "-o", str(out)]) == 0
    pixels = _png_pixels(out)
    assert pixels.shape[1] > 800 and 250 < pixels.shape[0] < 800
    assert pixels[..., :3].std() > 10  # not blank


def test_output_without_a_suffix_is_written_and_reported_as_png(files, tmp_path, capsys):
    assert main(["maps", files["ref"], files["blur"], "-o", str(tmp_path / "maps")]) == 0
    assert f"wrote {tmp_path / 'maps.png'}" in capsys.readouterr().out
    assert _png_pixels(tmp_path / "maps.png").ndim == 3 and not (tmp_path / "maps").exists()


def test_demo_runs_and_writes_the_figure(tmp_path, capsys):
    out = tmp_path / "demo.png"
    assert main(["demo", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "best first" in text and "heavy-noise" in text
    assert _png_pixels(out).ndim == 3


@pytest.mark.parametrize("argv,match", [
    (["score", "missing.png", "also-missing.png"], "no such image file"),
    (["score", "REF_ONLY"], "expected a reference"),
    (["score", "{ref}", "{ref}", "--batch", "0"], "--batch"),
    (["maps", "{ref}", "{bad}"], "cannot read"),
    (["maps", "{ref}", "{bad}"], "expected a PNG (gray"),
    (["maps", "{ref}", "{small}"], "same size"),
    (["score", "--ref-dir", "{dir}/nowhere", "--dir", "{dir}/out"], "--ref-dir"),
    (["score", "{tiny}", "{tiny}"], "tiny.png is 12x20; images must be at least 16x16"),  # names the file
])
def test_errors_are_one_line_on_stderr(files, tmp_path, capsys, argv, match):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"garbage")
    small = _save(torch.rand(3, 32, 32), tmp_path / "small.png")
    tiny = _save(torch.rand(3, 20, 12), tmp_path / "tiny.png")
    argv = [a.format(ref=files["ref"], bad=bad, small=small, dir=files["dir"], tiny=tiny) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and match in err and "Traceback" not in err


def test_weights_before_or_after_the_subcommand(files, tmp_path, capsys):
    parse = build_parser().parse_args
    assert parse(["demo"]).weights is None
    assert parse(["--weights", "w", "demo"]).weights == "w"
    assert parse(["maps", "a", "b", "--weights", "w"]).weights == "w"
    assert parse(["--weights", "v", "score", "a", "--weights", "w"]).weights == "w"
    assert main(["score", files["ref"], files["ref"], "--weights", str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in capsys.readouterr().err


@pytest.mark.parametrize("output,match", [("{tmp}/dir.png", "Is a directory"), ("{ref}/x.png", "cannot write"),
                                          ("{tmp}/denied.png", "Permission denied")])
def test_unwritable_output_is_one_line(files, tmp_path, capsys, monkeypatch, output, match):
    from matplotlib.figure import Figure

    def deny(self, path, *args, **kwargs):
        if str(path).endswith("denied.png"):
            raise PermissionError(13, "Permission denied", str(path))
        return savefig(self, path, *args, **kwargs)

    savefig = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", deny)
    output = output.format(tmp=tmp_path, ref=files["ref"])
    (tmp_path / "dir.png").mkdir()
    assert main(["maps", files["ref"], files["blur"], "-o", output]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and match in err and output in err and "Traceback" not in err


def test_version_matches_the_installed_distribution(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"pixelperfect {version('pixelperfect-loss')}"


def test_python_dash_m_and_a_closed_pipe(files):
    """``python -m pixelperfect_loss`` is the command line; a reader that leaves early (``| head``) is no error."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "pixelperfect_loss", "score", files["ref"], files["blur"],
                             files["noise"], "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # before the model has loaded: the first write meets a closed pipe
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0 and err == "", err


def test_summary_names_the_other_part_when_it_is_a_real_share_of_the_score():
    from pixelperfect_loss.cli import _summary

    entry = {c: {"mean": 0.0, "area": 0.0} for c in CHANNELS}
    entry["blur"] = {"mean": 0.3, "area": 0.5}
    for other, shown in [(-0.2, True), (-0.02, False), (-0.009, False)]:  # score -1: 5% is -0.05
        text = _summary({**entry, "score": -1.0, "other": {"score_share": other}})
        assert ("other" in text) == shown, (other, text)
