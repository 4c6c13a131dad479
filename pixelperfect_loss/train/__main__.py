"""Command line for training: ``python -m pixelperfect_loss.train [predictor] [options]``.

With no sub-command, everything the package has is trained on the embedded images and the
weights are written to ``--out`` (default ``weights/``).
"""

from __future__ import annotations

import argparse
import sys

import torch

RECIPES = {
    # name: (steps, batch, crop)
    "full": (24000, 16, 128),
    "quick": (3000, 16, 128),
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pixelperfect_loss.train",
                                description="Train the pixelperfect_loss networks on synthetic engine data.")
    p.add_argument("net", nargs="?", default="all", choices=["all", "predictor"],
                   help="which network to train (default: all of them)")
    p.add_argument("--images", default=None,
                   help="folder of clean training photos (PNG/JPEG/TIFF); default: the embedded images")
    p.add_argument("--out", default="weights", help="output folder for weights, checkpoint and loss log")
    p.add_argument("--quick", action="store_true",
                   help=f"short recipe for smoke tests ({RECIPES['quick'][0]} steps, under 15 min on 2 CPU cores)")
    p.add_argument("--steps", type=int, default=None, help="training steps (overrides the recipe)")
    p.add_argument("--batch", type=int, default=None, help="images per step and per process")
    p.add_argument("--crop", type=int, default=None, help="crop size in pixels (a multiple of 16)")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (AdamW, cosine decay)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data and the initial weights")
    p.add_argument("--width", type=int, default=32, help="base channel width of the predictor")
    p.add_argument("--ckpt-every", type=int, default=250, help="steps between atomic checkpoints")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    steps, batch, crop = RECIPES["quick" if args.quick else "full"]
    steps = args.steps if args.steps is not None else steps
    batch = args.batch if args.batch is not None else batch
    crop = args.crop if args.crop is not None else crop
    for name, v in (("--steps", steps), ("--batch", batch)):
        if v < 1:
            print(f"error: {name} must be >= 1, got {v}", file=sys.stderr)
            return 2
    if crop < 16 or crop % 16:
        print(f"error: --crop must be a multiple of 16 and >= 16, got {crop}", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    from .predictor import train_predictor

    if args.net in ("all", "predictor"):
        train_predictor(args.images, args.out, steps=steps, batch=batch, crop=crop, lr=args.lr, seed=args.seed,
                        width=args.width, ckpt_every=args.ckpt_every, resume=args.resume,
                        progress=not args.no_progress)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
