"""Throughput of the distortion engine and its share of a predictor training step.

Measures, on batches of 16 random crops of the embedded images:
- ``make_triplets`` at crop sizes 128 and 256: triplets per second (median of 9 runs, interleaved
  with the training step's runs);
- one predictor training step on those triplets (``DistortionPredictor(ref, img, lowres=True)``,
  ``map_loss`` against 4x average-pooled labels, backward, AdamW step), and the engine's share
  of the full step, engine / (engine + step), with a fresh engine batch every step and with the
  training command's ``--reuse`` default (each engine batch seen that many times, rotated and
  reflected: engine / reuse per step; 4 is measured when the default is 1);
- the wall time per step of the real training loop, engine included, in those settings;
- the engine's JPEG codec against kornia's differentiable codec (its predecessor) on one batch;
- its two closed-form colour operators (HSV saturation, chroma noise) against the same operations
  through kornia's colour conversions and gaussian filter (their predecessors);
- the random crops that feed the engine (``RandomCrops.batch``), timed with it: the data share of a step;
- ``make_triplets`` at 32x32, where the pixel work is negligible: what calling its small operations costs;
- ``make_triplets`` on four batches' crops in one call against four calls;
- ``make_ranked_sets(clean, 4)`` at size 128: seconds per set.

Run from the repository root:
    python -m benchmarks.engine_speed          # writes benchmarks/RESULTS.md
    python -m benchmarks.engine_speed --quick  # batch 4 at size 64, 1 run, prints only

``--threads N`` sets ``torch.set_num_threads(N)``; by default the thread count is left alone.
``--device cuda`` runs the engine and the step on the GPU (the engine's random draws stay on the CPU
generator, as in training) and writes its own section, ``engine_speed_cuda``.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys

import kornia
import torch
import torch.nn.functional as F

from benchmarks.common import time_call, time_interleaved, write_section
from pixelperfect_loss.data import RandomCrops, embedded_images
from pixelperfect_loss.engine import make_ranked_sets, make_triplets
from pixelperfect_loss.engine.operators import _jpeg_codec, chroma_noise, saturation_hsv
from pixelperfect_loss.nets import DistortionPredictor
from pixelperfect_loss.train.__main__ import REUSE as SHIPPED_REUSE
from pixelperfect_loss.train.__main__ import default_workers
from pixelperfect_loss.train.predictor import map_loss


def measure(images: list[torch.Tensor], size: int, batch: int, repeats: int,
            device: str = "cpu") -> dict[str, float]:
    clean = RandomCrops(images, size=size).batch(0, batch).to(device)
    g = torch.Generator().manual_seed(0)
    ref, img, labels = make_triplets(clean, g)
    target = F.avg_pool2d(labels, 4)
    net = DistortionPredictor().to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)

    def train_step() -> None:
        opt.zero_grad(set_to_none=True)
        loss, _ = map_loss(net(ref, img, lowres=True), target)
        loss.backward()
        opt.step()

    crops, start = RandomCrops(images, size=size, seed=1), itertools.count(0, batch)  # new crops every call
    times = time_interleaved([lambda: crops.batch(next(start), batch), lambda: make_triplets(clean, g), train_step],
                             repeats)
    return dict(zip(("crops", "engine", "step"), times))


OVERLAP_STEPS = 30
ROUNDS = 3  # of the real training loop's variants
REUSE = SHIPPED_REUSE if SHIPPED_REUSE > 1 else 4  # the --reuse setting compared with fresh batches


def overlapped_step(images: list[torch.Tensor], batch: int, crop: int, workers: int, reuse: int = 1,
                    steps: int = OVERLAP_STEPS, device: str = "cpu") -> float:
    """Seconds per step of the real training loop, timed from the 6th to the last step."""
    import tempfile
    import time

    from pixelperfect_loss.train import predictor as tp

    stamps: list[float] = []
    real_write = tp.LossLog.write

    def stamp(self, **values) -> None:  # the loop logs every step when log_every=1
        stamps.append(time.perf_counter())

    tp.LossLog.write = stamp
    threads = torch.get_num_threads()
    if workers:  # as the training command does: leave the workers their cores
        torch.set_num_threads(max(1, threads - workers))
    try:
        with tempfile.TemporaryDirectory() as out:
            tp.train_predictor(images, out, steps=steps + 6, batch=batch, crop=crop, workers=workers,
                               reuse=reuse, log_every=1, ckpt_every=10**9, progress=False, device=device)
    finally:
        tp.LossLog.write = real_write
        torch.set_num_threads(threads)
    return (stamps[-2] - stamps[5]) / (len(stamps) - 7)


def _kornia_saturation_hsv(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    hsv = kornia.color.rgb_to_hsv(x)
    s = (hsv[:, 1:2] * torch.exp2(1.5 * t.view(-1, 1, 1, 1))).clamp(0, 1)
    return kornia.color.hsv_to_rgb(torch.cat([hsv[:, :1], s, hsv[:, 2:]], 1)).clamp(0, 1)


def _kornia_chroma_noise(x: torch.Tensor, t: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    ycc = kornia.color.rgb_to_ycbcr(x)
    nz = kornia.filters.gaussian_blur2d(torch.randn(x[:, :2].shape, generator=g).to(x.device), (5, 5), (0.7, 0.7)) / 0.4
    ycc = torch.cat([ycc[:, :1], ycc[:, 1:] + 0.15 * t.view(-1, 1, 1, 1) * nz], 1)
    return kornia.color.ycbcr_to_rgb(ycc).clamp(0, 1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="batch 4, size 64, 1 run, print only")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: untouched)")
    parser.add_argument("--device", default="cpu", help="where the engine and the training step run (cpu, cuda)")
    parser.add_argument("--workers", type=int, default=None,
                        help="engine worker processes of the worker variants of the loop (default: the training "
                             "command's default on --device, at least 1)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes, batch, repeats = ((64,), 4, 1) if args.quick else ((128, 256), 16, 9)
    images = embedded_images()

    dev = args.device
    inline = default_workers(torch.device(dev)) == 0  # the recipe makes the engine's batches in its own process
    shipped = " (the shipped recipe)" if inline else ""
    fresh_note, reuse_note = (shipped, "") if SHIPPED_REUSE == 1 else ("", shipped)
    lines = [f"Device: {dev}{f' ({torch.cuda.get_device_name(dev)})' if dev.startswith('cuda') else ''}. "
             f"Batch {batch}, median of {repeats} after 1 warm-up.", "",
             f"| size | crops s | make_triplets s | triplets/s | train step s | engine share, in the training process, "
             f"fresh batch every step{fresh_note} | data share (crops + engine) | data share with `--reuse {REUSE}`{reuse_note} |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for size in sizes:
        r = measure(images, size, batch, repeats, dev)
        share = r["engine"] / (r["engine"] + r["step"])
        data = r["crops"] + r["engine"]
        reused = data / REUSE / (data / REUSE + r["step"])
        lines.append(f"| {size} | {r['crops']:.4f} | {r['engine']:.4f} | {batch / r['engine']:.1f} | "
                     f"{r['step']:.4f} | **{share:.0%}** | **{data / (data + r['step']):.0%}** | {reused:.0%} |")
    lines += ["", "crops: `RandomCrops(...).batch` of the batch, a new item range each round (random square crops "
                  "down-scaled by up to 2x with antialiasing, flipped; the embedded images are 256x384, so at 256 "
                  "they are cropped only, never down-scaled); data share = (crops + make_triplets) / (that + step)."]

    crop = 128 if not args.quick else 64
    lines += ["", f"Wall time per step of the real training loop `train_predictor` (engine included, crop {crop}, "
                  f"batch {batch}, {3 if args.quick else OVERLAP_STEPS} steps after start-up, median of "
                  f"{1 if args.quick else ROUNDS} rounds over the variants), each against the training recipe's "
                  "in the same rounds:", "",
              "| engine batches | engine runs in | s per step | time per step, relative to the recipe |",
              "|---|---|---:|---:|"]
    shipped_workers = default_workers(torch.device(dev))
    nw = args.workers or max(1, shipped_workers)
    variants = ((1, 0), (REUSE, nw)) if args.quick else ((1, 0), (1, nw), (REUSE, 0), (REUSE, nw))
    shipped_variant = (SHIPPED_REUSE, shipped_workers) if (SHIPPED_REUSE, shipped_workers) in variants else (1, 0)
    # Only ratios within these rounds: an overhead against a step timed apart, 1 - step / (time per step), read
    # from 4% to 36% in five runs of 2026-11-23 on this noisy machine.
    loop_steps: dict[tuple[int, int], list[float]] = {v: [] for v in variants}
    for _ in range(1 if args.quick else ROUNDS):  # rounds over the variants, so that a slow spell hits all of them
        for reuse, workers in variants:
            loop_steps[reuse, workers].append(
                overlapped_step(images, batch, crop, workers, reuse, 3 if args.quick else OVERLAP_STEPS, dev))
    base = statistics.median(loop_steps[shipped_variant])
    for reuse, workers in variants:
        per_step = statistics.median(loop_steps[reuse, workers])
        recipe = " (the training recipe)" if (reuse, workers) == (SHIPPED_REUSE, shipped_workers) else ""
        lines.append(f"| {'fresh every step' if reuse == 1 else f'each seen {reuse}x'} | "
                     f"{'main process' if workers == 0 else f'{workers} worker process' + 'es' * (workers > 1)}{recipe} | "
                     f"{per_step:.4f} | {per_step / base:.2f}x |")

    size, k = sizes[0], 4
    clean = RandomCrops(images, size=size).batch(0, batch).to(dev)
    g = torch.Generator().manual_seed(0)
    q = torch.linspace(5, 95, batch, device=dev)
    # the operations as the engine calls them, without the public functions' argument checks (kornia has none)
    ours = time_call(lambda: _jpeg_codec(clean, q), repeats)
    peer = time_call(lambda: kornia.enhance.jpeg_codec_differentiable(clean, q), repeats)
    lines += ["", f"JPEG operator at size {size}, batch {batch}: the engine's codec {ours:.4f} s, kornia's "
                  f"differentiable codec (the engine's previous one) {peer:.4f} s: **{peer / ours:.1f}x** ours."]
    t = torch.linspace(-1, 1, batch, device=dev)
    hsv_ours = time_call(lambda: saturation_hsv.unchecked(clean, t), repeats)
    hsv_peer = time_call(lambda: _kornia_saturation_hsv(clean, t), repeats)
    cn_ours = time_call(lambda: chroma_noise.unchecked(clean, t.abs(), torch.Generator().manual_seed(0)), repeats)
    cn_peer = time_call(lambda: _kornia_chroma_noise(clean, t.abs(), torch.Generator().manual_seed(0)), repeats)
    lines += ["", f"Colour operators at size {size}, batch {batch}, against the same operation through kornia "
                  "(the engine's previous implementation; same output to 1e-5, tested): "
                  f"`saturation_hsv` {hsv_ours:.4f} s vs rgb_to_hsv / hsv_to_rgb {hsv_peer:.4f} s "
                  f"(**{hsv_peer / hsv_ours:.1f}x** ours); `chroma_noise` {cn_ours:.4f} s vs rgb_to_ycbcr, "
                  f"gaussian_blur2d, ycbcr_to_rgb {cn_peer:.4f} s (**{cn_peer / cn_ours:.1f}x** ours)."]
    tiny = RandomCrops(images, size=32).batch(0, batch).to(dev)
    tiny_s = time_call(lambda: make_triplets(tiny, g), repeats)
    big_s = time_call(lambda: make_triplets(clean, g), repeats)
    lines += ["", f"`make_triplets` on {batch} crops of 32x32, where the pixel work is negligible: {tiny_s:.4f} s, "
                  f"{tiny_s / big_s:.0%} of its {big_s:.4f} s at {size}x{size} in the same run: the cost of calling "
                  "its many small torch operations."]
    if not args.quick:  # does one engine call for several steps' samples (all fresh) save calling overhead?
        wide = RandomCrops(images, size=size).batch(0, 4 * batch).to(dev)
        # interleaved: timed one after the other, the two differed by 40% in either direction
        four, once = time_interleaved([lambda: [make_triplets(wide[i * batch:(i + 1) * batch], g) for i in range(4)],
                                       lambda: make_triplets(wide, g)], repeats)
        lines += ["", f"`make_triplets` on {4 * batch} crops of {size}x{size} in one call: {once:.4f} s, "
                      f"{once / four:.2f}x the time of four calls on {batch} ({four:.4f} s, interleaved): what one engine "
                      "call shared by four steps (each sample still seen once) would save."]
    ranked_s = time_call(lambda: make_ranked_sets(clean, k, g), repeats)
    lines += ["", f"`make_ranked_sets(clean, {k})` at size {size}: {ranked_s / batch * 1e3:.1f} ms "
                  f"per set ({ranked_s:.4f} s per batch of {batch})."]
    table = "\n".join(lines)
    print(table)
    if not args.quick:
        name = "engine_speed" if dev == "cpu" else f"engine_speed_{torch.device(dev).type}"  # one section per kind
        write_section(name, table,
                      " ".join(["python -m benchmarks.engine_speed", *(argv or [])]))


if __name__ == "__main__":
    main(sys.argv[1:])
