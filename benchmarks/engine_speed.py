"""Throughput of the distortion engine and its share of a predictor training step.

Measures, on batches of 16 random crops of the embedded images:
- ``make_triplets`` at crop sizes 128 and 256: triplets per second (median of 5 runs);
- one predictor training step on those triplets (``DistortionPredictor(ref, img, lowres=True)``,
  ``map_loss`` against 4x average-pooled labels, backward, AdamW step), and the engine's share
  of the full step, engine / (engine + step);
- ``make_ranked_sets(clean, 4)`` at size 128: seconds per set.

Run from the repository root:
    python -m benchmarks.engine_speed          # writes benchmarks/RESULTS.md
    python -m benchmarks.engine_speed --quick  # batch 4 at size 64, 1 run, prints only

``--threads N`` sets ``torch.set_num_threads(N)``; by default the thread count is left alone.
"""

from __future__ import annotations

import argparse
import sys

import torch
import torch.nn.functional as F

from benchmarks.common import time_call, write_section
from pixelperfect_loss.data import RandomCrops, embedded_images
from pixelperfect_loss.engine import make_ranked_sets, make_triplets
from pixelperfect_loss.nets import DistortionPredictor
from pixelperfect_loss.train.predictor import map_loss


def measure(images: list[torch.Tensor], size: int, batch: int, repeats: int) -> dict[str, float]:
    clean = RandomCrops(images, size=size).batch(0, batch)
    g = torch.Generator().manual_seed(0)
    engine_s = time_call(lambda: make_triplets(clean, g), repeats)

    ref, img, labels = make_triplets(clean, g)
    target = F.avg_pool2d(labels, 4)
    net = DistortionPredictor()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)

    def train_step() -> None:
        opt.zero_grad(set_to_none=True)
        loss, _ = map_loss(net(ref, img, lowres=True), target)
        loss.backward()
        opt.step()

    step_s = time_call(train_step, repeats)
    return {"engine": engine_s, "step": step_s}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="batch 4, size 64, 1 run, print only")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: untouched)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes, batch, repeats = ((64,), 4, 1) if args.quick else ((128, 256), 16, 5)
    images = embedded_images()

    lines = [f"Batch {batch}, median of {repeats} after 1 warm-up.", "",
             "| size | make_triplets s | triplets/s | train step s | engine share of step |",
             "|---:|---:|---:|---:|---:|"]
    for size in sizes:
        r = measure(images, size, batch, repeats)
        share = r["engine"] / (r["engine"] + r["step"])
        lines.append(f"| {size} | {r['engine']:.4f} | {batch / r['engine']:.1f} | "
                     f"{r['step']:.4f} | {share:.0%} |")

    size, k = sizes[0], 4
    clean = RandomCrops(images, size=size).batch(0, batch)
    g = torch.Generator().manual_seed(0)
    ranked_s = time_call(lambda: make_ranked_sets(clean, k, g), repeats)
    lines += ["", f"`make_ranked_sets(clean, {k})` at size {size}: {ranked_s / batch * 1e3:.1f} ms "
                  f"per set ({ranked_s:.4f} s per batch of {batch})."]
    table = "\n".join(lines)
    print(table)
    if not args.quick:
        write_section("engine_speed", table,
                      " ".join(["python -m benchmarks.engine_speed", *(argv or [])]))


if __name__ == "__main__":
    main(sys.argv[1:])
