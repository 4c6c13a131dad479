"""Command line for training: ``python -m pixelperfect_loss.train [all|predictor|scorer] [options]``.

With no sub-command, everything the package has is trained on the embedded images and the
weights are written to ``--out`` (default ``weights/``). Under ``torchrun --nproc_per_node=N`` the
predictor trains with DistributedDataParallel (gloo on CPU, nccl on GPU, one GPU per rank): each rank draws its own
engine samples and only rank 0 writes checkpoints and weights.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

import torch

RECIPES = {
    # network: {recipe: (steps, batch, crop)}
    "predictor": {"full": (16000, 16, 128), "quick": (3000, 16, 128)},
    "scorer": {"full": (1200, 8, 128), "quick": (150, 8, 128)},  # 1,200 since v6 (600 before): train/scorer.py
}
#: second phase of the predictor's recipe: steps with their own warm-up and cosine decay from TUNE_LR, and the
#: cross-talk term of the map loss weighted CROSS_WEIGHT (weights/README.md, "Cross-talk tuning"). None in the quick
#: recipe: after 3,000 steps the tone channels are still weak and the term crushed them (saturation 0.07 of 0.6)
TUNE = {"full": 8000, "quick": 0}  # 8,000 since v7 (4,000 before)
TUNE_LR = 2e-4
CROSS_WEIGHT = 5.0
#: weight of the tuning phase's error on labelled cells where channels overlap (since v7; 1 before): at 1 the
#: tuned network hedged with faint maps there, at 3 its cross-talk came back (weights/README.md)
OVERLAP_WEIGHT = 2.0
#: peak learning rate of the predictor's first phase. At 2e-3, 2 of 4 seeds had lost units (1/16 features past the
#: bound, silent SiLU units) by step 1,500, among them the default seed; at 1e-3, 0 of 5 (weights/README.md, "Recipe")
LR = 1e-3
REUSE = 1  # fresh engine batches: with reuse 2 (clean rerun 2026-11-23) and 4, predictors were worse (weights/README.md)
WORKERS = 0  # on the CPU the engine runs in the training process: measured faster than in 1 worker process


def tune_steps(recipe: str, steps: int | None, requested: int | None) -> int:
    """Steps of the predictor's tuning phase: ``requested``; else the recipe's (:data:`TUNE`), or none when the
    first phase's ``steps`` were set by hand."""
    if requested is not None:
        return requested
    return TUNE[recipe] if steps is None else 0


def default_workers(device: torch.device) -> int:
    """Engine worker processes by default: none on the CPU (:data:`WORKERS`); on a GPU, where the
    engine's many small operations would leave the GPU waiting, up to 6 (half the cores): a step of the
    shipped recipe took 20 ms with 6 workers against 43 ms without, on an H100 with 16 cores
    (``python -m benchmarks.engine_speed --device cuda``)."""
    if device.type == "cpu":
        return WORKERS
    return max(1, min(6, (os.cpu_count() or 2) // 2))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pixelperfect_loss.train",
                                description="Train the pixelperfect_loss networks on synthetic engine data.")
    p.add_argument("net", nargs="?", default="all", choices=["all", "predictor", "scorer"],
                   help="which network to train (default: all of them, the predictor first; the scorer is "
                        "trained on top of the frozen predictor found by --predictor)")
    p.add_argument("--images", default=None,
                   help="folder of clean training photos (PNG/JPEG/TIFF); default: the embedded images")
    p.add_argument("--out", default="weights", help="output folder for weights, checkpoint and loss log")
    p.add_argument("--quick", action="store_true",
                   help="short recipes for smoke tests (predictor {} steps and no tuning phase, scorer {} steps; under "
                        "15 min on 2 CPU cores)".format(RECIPES["predictor"]["quick"][0], RECIPES["scorer"]["quick"][0]))
    p.add_argument("--predictor", default=None,
                   help="predictor weights the scorer is trained on (default: --out/predictor.safetensors if "
                        "present, else the packaged weights)")
    p.add_argument("--steps", type=int, default=None,
                   help="training steps (overrides the recipe; the predictor's first phase, --tune-steps follow)")
    p.add_argument("--batch", type=int, default=None, help="images per step and per process")
    p.add_argument("--crop", type=int, default=None, help="crop size in pixels (a multiple of 16)")
    p.add_argument("--lr", type=float, default=LR,
                   help=f"peak learning rate of the predictor's first phase (AdamW, cosine decay; default {LR:g})")
    p.add_argument("--seed", type=int, default=0, help="seed of the data and the initial weights")
    p.add_argument("--width", type=int, default=32, help="base channel width of the predictor")
    p.add_argument("--hue", action=argparse.BooleanOptionalAction, default=True,
                   help="give the predictor the hue direction of each 4x4 cell as two more fixed inputs (default: "
                        "on, as in the shipped weights since v7; v6's network has neither: --no-hue --no-stats)")
    p.add_argument("--stats", action=argparse.BooleanOptionalAction, default=True,
                   help="give the predictor's pair head the sum of both images' whole-image tone statistics (mean, "
                        "spread and colour of the 4x4 cell means): a description of the scene that helps tell "
                        "image-wide contrast from brightness (default: on, as in the shipped weights since v7)")
    p.add_argument("--ckpt-every", type=int, default=250, help="steps between atomic checkpoints")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads of the training process (default: the cores left by --workers)")
    p.add_argument("--workers", type=int, default=None,
                   help="background processes making the predictor's training triplets (0: in the main process; "
                        f"default {WORKERS} on the CPU, on a GPU up to 6, half the cores)")
    p.add_argument("--reuse", type=int, default=REUSE,
                   help=f"steps that see each engine batch of the predictor, rotated and reflected (1-8, default "
                        f"{REUSE}): the engine then costs 1/reuse of its time per step; the predictors trained with 2 "
                        "and 4 came out worse (see weights/README.md)")
    p.add_argument("--tune-steps", type=int, default=None,
                   help="steps of the predictor's second phase, after --steps: its own warm-up and cosine decay from "
                        f"--tune-lr, with the cross-talk term in the loss (default: {TUNE['full']} in the full recipe, "
                        "none with --quick or with --steps)")
    p.add_argument("--tune-lr", type=float, default=TUNE_LR,
                   help=f"peak learning rate of the second phase (default {TUNE_LR:g})")
    p.add_argument("--cross-weight", type=float, default=CROSS_WEIGHT,
                   help="weight, in the second phase, of the cross-talk term of the map loss: a channel's |map| where "
                        f"only other channels are labelled (default {CROSS_WEIGHT:g})")
    p.add_argument("--overlap-weight", type=float, default=OVERLAP_WEIGHT,
                   help="weight, in the second phase, of the map error on labelled cells where two or more channels "
                        f"overlap, relative to other labelled cells (default {OVERLAP_WEIGHT:g})")
    p.add_argument("--device", default=None,
                   help="'cpu', 'cuda' or 'cuda:N' (default: the GPU when there is one, under torchrun each "
                        "rank's own, else the CPU); the training data are the same on every device")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.crop is not None and (args.crop < 16 or args.crop % 16):
        print(f"error: --crop must be a multiple of 16 and >= 16, got {args.crop}", file=sys.stderr)
        return 2
    if not 1 <= args.reuse <= 8:
        print(f"error: --reuse must be 1 to 8, got {args.reuse}", file=sys.stderr)
        return 2
    # the smallest value of each number; --width: the narrowest layers have width // 2 channels
    lowest = dict(steps=1, batch=1, threads=1, ckpt_every=1, width=2, tune_steps=0, cross_weight=0)
    for name, low in lowest.items():
        v = getattr(args, name)
        if v is not None and not v >= low:
            print(f"error: --{name.replace('_', '-')} must be >= {low}, got {v}", file=sys.stderr)
            return 2
    for name in ("lr", "tune_lr", "cross_weight", "overlap_weight"):
        v = getattr(args, name)
        if not math.isfinite(v) or (name != "cross_weight" and not v > 0):
            print(f"error: --{name.replace('_', '-')} must be a finite number{'' if name == 'cross_weight' else ' > 0'}"
                  f", got {v}", file=sys.stderr)
            return 2
    if not 0 <= args.seed < 2**31:  # the per-step generators are seeded from (seed, step) in 64 bits
        print(f"error: --seed must be 0 to {2**31 - 1}, got {args.seed}", file=sys.stderr)
        return 2
    from .common import finish_distributed, init_distributed, rank_and_world, training_device

    try:
        device = training_device(args.device)
    except ValueError as exc:
        print(f"error: --{exc}", file=sys.stderr)
        return 2
    if args.workers is None:
        args.workers = default_workers(device)
    elif args.workers < 0:
        print(f"error: --workers must be >= 0, got {args.workers}", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    elif args.workers > 0 and device.type == "cpu":  # leave the workers their cores
        torch.set_num_threads(max(1, (os.cpu_count() or 1) - args.workers))
    recipe = "quick" if args.quick else "full"
    init_distributed(args.device)

    def settings(net: str) -> dict[str, int]:
        steps, batch, crop = RECIPES[net][recipe]
        return dict(steps=args.steps or steps, batch=args.batch or batch, crop=args.crop or crop)

    common = dict(seed=args.seed, ckpt_every=args.ckpt_every, resume=args.resume, progress=not args.no_progress,
                  device=args.device)
    try:
        if args.net in ("all", "predictor"):
            from .predictor import train_predictor

            train_predictor(args.images, args.out, lr=args.lr, width=args.width, hue=args.hue, stats=args.stats,
                            workers=args.workers,
                            reuse=args.reuse, tune_steps=tune_steps(recipe, args.steps, args.tune_steps),
                            tune_lr=args.tune_lr, cross_weight=args.cross_weight, overlap_weight=args.overlap_weight,
                            **settings("predictor"), **common)
        if args.net in ("all", "scorer") and rank_and_world()[0] == 0:  # the scorer is small: one process
            from pathlib import Path

            from .scorer import train_scorer

            pred = args.predictor
            if pred is None and (Path(args.out) / "predictor.safetensors").is_file():
                pred = Path(args.out) / "predictor.safetensors"
            # `all --resume` after an interrupted predictor: the scorer has no checkpoint yet and starts afresh
            fresh = args.net == "all" and not (Path(args.out) / "scorer.ckpt").is_file()
            train_scorer(args.images, args.out, predictor_path=pred, **settings("scorer"),
                         **{**common, "resume": args.resume and not fresh})
    except (FileNotFoundError, ValueError) as exc:
        if not str(exc).startswith("--"):  # errors of the user's input name its flag; others are bugs
            raise
        print("error: " + " ".join(str(exc).split()), file=sys.stderr)  # one line, no traceback
        return 2
    finish_distributed()  # on success; torchrun stops every rank when one fails
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
