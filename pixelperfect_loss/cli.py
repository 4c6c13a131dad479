"""The ``pixelperfect`` command line: score, maps, demo.

Bad paths, unreadable images and mismatched sizes print one line on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor

from . import __version__
from ._checks import MIN_SIZE
from .channels import CHANNELS
from .data import image_paths, read_image


class CliError(Exception):
    """An error reported as one line on stderr."""


def _load(path: str | Path) -> Tensor:
    p = Path(path)
    if not p.is_file():
        raise CliError(f"no such image file: {p}")
    try:
        x = read_image(p)[None]
    except ValueError as exc:  # "path: cannot read P as an image (reason); expected ..."
        raise CliError(str(exc).split(": ", 1)[-1]) from exc
    if min(x.shape[-2:]) < MIN_SIZE:
        raise CliError(f"{p} is {x.shape[-1]}x{x.shape[-2]}; images must be at least {MIN_SIZE}x{MIN_SIZE}")
    return x


def _same_size(ref: Tensor, img: Tensor, ref_name: str, img_name: str) -> None:
    if ref.shape != img.shape:
        raise CliError(f"{img_name} is {img.shape[-1]}x{img.shape[-2]} but the reference {ref_name} is "
                       f"{ref.shape[-1]}x{ref.shape[-2]}; images must have the same size")


def _summary(entry: dict[str, Any], top: int = 3) -> str:
    ranked = sorted(CHANNELS, key=lambda c: -abs(entry[c]["mean"]))[:top]
    parts = [f"{c} {entry[c]['mean']:+.2f} ({100 * entry[c]['area']:.0f}%)" for c in ranked if entry[c]["area"] > 0]
    other = entry["other"]["score_share"]
    if other < 0.05 * min(-1e-12, entry["score"]) and other < -0.01:  # more than 5% of the (negative) score
        parts.append(f"other {other:+.2f}")
    return ", ".join(parts) if parts else "no change detected"


def _table(rows: list[dict[str, Any]]) -> str:
    width = max(len(r["image"]) for r in rows)
    lines = [f"{'rank':>4}  {'image':<{width}}  {'score':>8}  what changed (mean map, area)"]
    for i, r in enumerate(rows, 1):
        lines.append(f"{i:>4}  {r['image']:<{width}}  {r['score']:>8.3f}  {_summary(r['report'])}")
    return "\n".join(lines)


def _score_pairs(pp: Any, pairs: list[tuple[str, Tensor, str, Tensor]], progress: bool,
                 batch: int = 8) -> list[dict[str, Any]]:
    """Score (reference name, reference, image name, image) pairs, batching pairs of equal size."""
    from tqdm import tqdm

    for ref_name, ref, name, img in pairs:
        _same_size(ref, img, ref_name, name)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, (_, ref, _, _) in enumerate(pairs):
        groups.setdefault(tuple(ref.shape), []).append(i)
    rows: list[dict[str, Any]] = []
    with tqdm(total=len(pairs), desc="scoring", disable=not progress, file=sys.stderr) as bar:
        for idx in groups.values():
            for start in range(0, len(idx), batch):
                chunk = idx[start:start + batch]
                reports = pp.report(torch.cat([pairs[i][1] for i in chunk]), torch.cat([pairs[i][3] for i in chunk]))
                for i, rep in zip(chunk, reports):
                    rows.append({"reference": pairs[i][0], "image": pairs[i][2], "score": rep["score"], "report": rep})
                bar.update(len(chunk))
    return sorted(rows, key=lambda r: -r["score"])


def cmd_score(args: argparse.Namespace) -> int:
    from .metric import PixelPerfect

    if args.batch < 1:
        raise CliError(f"--batch must be >= 1, got {args.batch}")
    if args.ref_dir or args.dir:
        if not (args.ref_dir and args.dir) or args.files:
            raise CliError("use either REF IMG [IMG ...] or both --ref-dir and --dir")
        refs = {p.name: p for p in _paths(args.ref_dir, "--ref-dir")}
        imgs = _paths(args.dir, "--dir")
        missing = [p.name for p in imgs if p.name not in refs]
        if missing:
            raise CliError(f"no reference in {args.ref_dir} for {missing[0]} (files are paired by name)")
        pairs = [(str(refs[p.name]), _load(refs[p.name]), str(p), _load(p)) for p in imgs]
    else:
        if len(args.files) < 2:
            raise CliError("expected a reference and at least one image: pixelperfect score REF IMG [IMG ...]")
        ref = _load(args.files[0])
        pairs = [(args.files[0], ref, f, _load(f)) for f in args.files[1:]]
    pp = PixelPerfect(args.weights)
    rows = _score_pairs(pp, pairs, progress=len(pairs) > 1 and not args.json, batch=args.batch)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(_table(rows))
    return 0


def _paths(folder: str, flag: str) -> list[Path]:
    try:
        return image_paths(folder)
    except (FileNotFoundError, ValueError) as exc:
        raise CliError(f"{flag}: {str(exc).split(': ', 1)[-1]}") from exc


def maps_figure(reference: Tensor, image: Tensor, maps: Tensor, path: str | Path, title: str = "") -> Path:
    """Write a PNG: the reference, the image, and one signed heat map per channel on a shared
    symmetric scale with a diverging colormap and a colorbar (needs matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise CliError("the maps figure needs matplotlib: pip install 'pixelperfect-loss[plot]'") from exc
    vmax = max(float(maps.abs().max()), 0.05)
    h, w = reference.shape[-2:]
    panel = 2.6
    fig, axes = plt.subplots(2, 5, figsize=(5 * panel * max(w / h, 0.6) + 1.0, 2 * panel + 0.6), dpi=100,
                             constrained_layout=True)
    for ax, im, name in ((axes[0, 0], reference, "reference"), (axes[1, 0], image, "image")):
        ax.imshow(im[0].permute(1, 2, 0).clamp(0, 1).numpy())
        ax.set_title(name)
    shown = None
    for c, name in enumerate(CHANNELS):
        ax = axes[c // 4, 1 + c % 4]
        m = maps[0, c]
        shown = ax.imshow(m.numpy(), cmap="RdBu_r", vmin=-vmax, vmax=vmax)
        ax.set_title(f"{name} {float(m.mean()):+.2f}")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    bar = fig.colorbar(shown, ax=axes, shrink=0.9, pad=0.01)
    bar.set_label("image has less  <-  0  ->  image has more")
    if title:
        fig.suptitle(title)
    path = Path(path)
    if not path.suffix:  # matplotlib would write path + ".png" while we report path
        path = path.with_name(path.name + ".png")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    except OSError as exc:
        raise CliError(f"--output: cannot write {path} ({exc.strerror or exc}: {exc.filename or path})") from exc
    finally:
        plt.close(fig)
    return path


def cmd_maps(args: argparse.Namespace) -> int:
    from .metric import PixelPerfect

    ref, img = _load(args.ref), _load(args.img)
    _same_size(ref, img, args.ref, args.img)
    pp = PixelPerfect(args.weights)
    with torch.no_grad():
        maps = pp.maps(ref, img)
    out = maps_figure(ref, img, maps, args.output, title=f"{Path(args.img).name} vs {Path(args.ref).name}")
    print(f"wrote {out}")
    return 0


def demo_images(reference: Tensor) -> dict[str, Tensor]:
    """A few distorted versions of ``reference`` (1, 3, H, W) made by the engine, mildest first."""
    from .engine import operators as op

    g = torch.Generator().manual_seed(0)
    one = torch.ones(1)
    h, w = reference.shape[-2:]
    left = (torch.arange(w) < w // 2).float().view(1, 1, 1, w)
    mixed = op.warmth_gain(reference, 0.5 * one)
    mixed = mixed * (1 - left) + op.gaussian_blur(mixed, 0.4 * one) * left
    return {
        "slightly-warm": op.warmth_gain(reference, 0.3 * one),
        "mild-noise": op.gaussian_noise(reference, 0.3 * one, g),
        "jpeg-q30": op.jpeg(reference, 0.45 * one),
        "warm-and-left-half-blurred": mixed,
        "dark-and-blurred": op.gaussian_blur(op.brightness_gain(reference, -0.6 * one), 0.5 * one),
        "heavy-noise": op.gaussian_noise(reference, 0.9 * one, g),
    }


def cmd_demo(args: argparse.Namespace) -> int:
    from .data import embedded_image_paths
    from .metric import PixelPerfect

    ref_path = [p for p in embedded_image_paths() if p.stem == "kodim23"][0]
    ref = read_image(ref_path)[None]
    pp = PixelPerfect(args.weights)
    versions = demo_images(ref)
    rows = _score_pairs(pp, [(ref_path.name, ref, name, img) for name, img in versions.items()], progress=False)
    print(f"Reference: {ref_path.name} (bundled). Candidates, best first:\n")
    print(_table(rows))
    name = "warm-and-left-half-blurred"
    with torch.no_grad():
        maps = pp.maps(ref, versions[name])
    out = maps_figure(ref, versions[name], maps, Path(args.output), title=f"demo: {name}")
    print(f"\nwrote {out}: the maps of '{name}' (red: the image has more of a channel, blue: less)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    weights_help = "folder with predictor.safetensors and scorer.safetensors"
    p = argparse.ArgumentParser(prog="pixelperfect", description="Reference-based, per-channel image quality.")
    p.add_argument("--weights", default=None, help=weights_help)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    # --weights is also accepted after the subcommand; SUPPRESS keeps a value given before it
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--weights", default=argparse.SUPPRESS, help=weights_help)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("score", parents=[common], help="score images against a reference, best first")
    s.add_argument("files", nargs="*", help="REF IMG [IMG ...]")
    s.add_argument("--ref-dir", help="folder of references, paired with --dir by file name")
    s.add_argument("--dir", help="folder of images to score")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.add_argument("--batch", type=int, default=8, help="pairs of equal size scored together (default 8)")
    s.set_defaults(func=cmd_score)
    m = sub.add_parser("maps", parents=[common], help="write a figure of the signed maps of IMG against REF")
    m.add_argument("ref")
    m.add_argument("img")
    m.add_argument("-o", "--output", default="maps.png", help="output PNG (default: maps.png)")
    m.set_defaults(func=cmd_maps)
    d = sub.add_parser("demo", parents=[common], help="rank distorted versions of a bundled photo and draw their maps")
    d.add_argument("-o", "--output", default="pixelperfect-demo.png", help="output PNG")
    d.set_defaults(func=cmd_demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:  # e.g. `pixelperfect score ... --json | head`: the reader left, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return 0
    except (CliError, OSError, ValueError, TypeError) as exc:
        message = " ".join(str(exc).split())  # one line, even for multi-line library messages
        print(f"pixelperfect: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
