"""Downstream proof: train a tiny denoiser / 2x super-resolution net with L1 alone and with
L1 + lambda * PixelPerfectLoss, then measure what changed on photos never trained on.

Run from the repository root (CPU, minutes)::

    python examples/downstream.py --task denoise --loss l1 blur blur+noise --steps 1500 --out runs/downstream

Losses (same seed, same crops, same noise, same initial weights for every variant):

- ``l1``          L1 alone;
- ``blur``        L1 + lam * PixelPerfectLoss(channels=["blur"], direction="more");
- ``blur+noise``  L1 + lam * PixelPerfectLoss(channels=["blur", "noise"], direction="more"): also
  penalises added noise, against an optimiser that "sharpens" by adding noise;
- ``blur+noise-unguarded``  the same with ``guard=0``: without the loss's guard term (the other
  channels and the other direction held near zero) this variant was gamed, see RESULTS.md.

Every PixelPerfectLoss variant uses the loss's default ``guard`` unless ``--guard`` says otherwise.

Degradations: ``denoise`` input = clamp(gt + N(0, 25/255), 0, 1) (clamped because the loss and the
metrics work on [0, 1] images; clamping makes the noise slightly non-zero-mean near black and
white); ``sr`` input = antialiased bicubic 2x down-scale of gt (crop sizes are even).

Evaluation (centre crops, side = largest multiple of 16 that fits, capped at ``--eval-size``):
PSNR and SSIM (kornia, window 11) on RGB, the mean blur (index 0) and noise (index 1) maps of
``PixelPerfectLoss().maps(output, gt)``, the mean |map| of the six other channels, and an
independent sharpness measure that does not use our model: the HF energy ratio, i.e. the energy
of ``Y - gaussian_blur(Y, sigma 1.5)`` on luma Y of the output divided by that of the ground truth
(1.0 = as much fine detail as gt, < 1 blurrier, > 1 noisier or over-sharpened), averaged over images
as a geometric mean (the other metrics: arithmetic means). The degraded input is evaluated the same
way as a baseline row.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pixelperfect_loss import PixelPerfectLoss
from pixelperfect_loss.data import RandomCrops, image_paths, read_image
from pixelperfect_loss.functional import GUARD

TASKS = ("denoise", "sr")
LOSSES = ("l1", "blur", "blur+noise", "blur+noise-unguarded")
LOSS_LABELS = {"l1": "L1", "blur": "L1+blur", "blur+noise": "L1+blur+noise",
               "blur+noise-unguarded": "L1+blur+noise, guard 0"}
NOISE_SIGMA = 25 / 255
EVAL_SEED = 12345
METRICS = ("psnr", "ssim", "blur", "noise", "other", "hf_ratio")


# ----------------------------------------------------------------------------- networks
def conv_stack(cin: int, cout: int, width: int = 32, depth: int = 5) -> nn.Sequential:
    """``depth`` 3x3 convolutions cin -> width -> ... -> cout with ReLUs (PyTorch's default init)."""
    layers: list[nn.Module] = [nn.Conv2d(cin, width, 3, padding=1), nn.ReLU(inplace=True)]
    for _ in range(depth - 2):
        layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True)]
    layers.append(nn.Conv2d(width, cout, 3, padding=1))
    return nn.Sequential(*layers)


class Denoiser(nn.Module):
    """Residual denoiser: output = input + residual (not clamped; clamp at evaluation).

    FFDNet-style for speed: the residual is computed by 5 conv layers (32 channels) on the 2x2
    pixel-unshuffled image (12 channels at half resolution) and pixel-shuffled back, which costs
    a quarter of the same stack at full resolution and sees a 22x22 pixel neighbourhood. The body
    sees the input centred on 0 (x - 0.5), which trains markedly faster than raw [0, 1] input."""

    def __init__(self, width: int = 32, depth: int = 5) -> None:
        super().__init__()
        self.body = conv_stack(12, 12, width, depth)

    def forward(self, x: Tensor) -> Tensor:
        return x + F.pixel_shuffle(self.body(F.pixel_unshuffle(x - 0.5, 2)), 2)


class SRNet(nn.Module):
    """2x super-resolution: bicubic up-sampling of the low-res input + a residual computed by 5 conv
    layers (32 channels) at low resolution and pixel-shuffled to full resolution (ESPCN-like); the
    body sees the input centred on 0. (With raw [0, 1] input and a near-zero last layer the L1-trained
    residual collapsed to zero: bicubic PSNR after 900 steps.)"""

    def __init__(self, width: int = 32, depth: int = 5) -> None:
        super().__init__()
        self.body = conv_stack(3, 12, width, depth)

    def forward(self, x: Tensor) -> Tensor:
        up = F.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False)
        return up + F.pixel_shuffle(self.body(x - 0.5), 2)


def make_net(task: str) -> nn.Module:
    return Denoiser() if task == "denoise" else SRNet()


# ----------------------------------------------------------------------------- degradations
def degrade(task: str, gt: Tensor, generator: torch.Generator) -> Tensor:
    """The network input for ground truth ``gt`` (N, 3, H, W) in [0, 1]."""
    if task == "denoise":
        noise = torch.randn(gt.shape, generator=generator, dtype=gt.dtype) * NOISE_SIGMA
        return (gt + noise).clamp(0, 1)
    return F.interpolate(gt, scale_factor=0.5, mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)


def input_as_output(task: str, x: Tensor) -> Tensor:
    """The degraded input at ground-truth size (the baseline row): itself, or bicubic-up-sampled."""
    if task == "denoise":
        return x
    return F.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False).clamp(0, 1)


# ----------------------------------------------------------------------------- losses
def make_loss(name: str, lam: float, guard: float = GUARD):
    """A callable ``(output, gt) -> scalar``; the PixelPerfectLoss sees ``output.clamp(0, 1)``
    (the clamp kills the gradient of that term outside [0, 1], L1 still pulls such values back)."""
    if name not in LOSSES:
        raise ValueError(f"loss: expected one of {LOSSES}, got {name!r}")
    pp = None
    if name == "blur":
        pp = PixelPerfectLoss(channels=["blur"], direction="more", guard=guard)
    elif name.startswith("blur+noise"):
        pp = PixelPerfectLoss(channels=["blur", "noise"], direction="more",
                              guard=0.0 if name.endswith("-unguarded") else guard)

    def loss_fn(out: Tensor, gt: Tensor) -> Tensor:
        loss = (out - gt).abs().mean()
        if pp is not None:
            loss = loss + lam * pp(out.clamp(0, 1), gt)
        return loss

    return loss_fn


# ----------------------------------------------------------------------------- training
def train(task: str, loss: str, *, steps: int = 1500, batch: int = 8, crop: int = 64, lam: float = 0.1,
          lr: float = 1e-3, seed: int = 0, train_dir: str | Path = "../shared/data/kodak24",
          crops: RandomCrops | None = None, log_every: int = 0, guard: float = GUARD) -> tuple[nn.Module, dict]:
    """Train one (task, loss) variant; returns the model (eval mode) and timing info.

    The crops (``RandomCrops(train_dir, crop, seed)``, items ``step * batch ...``), the noise (one
    generator per step) and the initial weights (``torch.manual_seed(seed)``) depend on ``seed``
    only, so every loss variant sees exactly the same data."""
    if crop % 2:
        raise ValueError(f"crop: expected an even size, got {crop}")
    crops = crops if crops is not None else RandomCrops(str(train_dir), size=crop, seed=seed)
    torch.manual_seed(seed)
    net = make_net(task)
    loss_fn = make_loss(loss, lam, guard)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1))
    net.train()
    start = time.perf_counter()
    for step in range(steps):
        gt = crops.batch(step * batch, batch)
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        x = degrade(task, gt, g)
        value = loss_fn(net(x), gt)
        opt.zero_grad(set_to_none=True)
        value.backward()
        opt.step()
        sched.step()
        if log_every and (step % log_every == 0 or step == steps - 1):
            print(f"  [{task}/{loss}] step {step:5d}  loss {value.item():.5f}", flush=True)
    seconds = time.perf_counter() - start
    net.eval()
    return net, {"train_s": seconds, "step_s": seconds / max(steps, 1), "steps": steps}


# ----------------------------------------------------------------------------- evaluation
def centre_crop(x: Tensor, cap: int = 256, multiple: int = 16) -> Tensor:
    """Centre crop (3, s, s), s = the largest multiple of ``multiple`` that fits, at most ``cap``."""
    h, w = x.shape[-2:]
    s = min(cap, h, w) // multiple * multiple
    t, l = (h - s) // 2, (w - s) // 2
    return x[..., t:t + s, l:l + s]


def load_eval(folder: str | Path, n: int | None = None, cap: int = 256) -> list[tuple[str, Tensor]]:
    """(name, centre crop) of the first ``n`` images of ``folder``."""
    return [(p.name, centre_crop(read_image(p), cap)) for p in image_paths(folder)[:n]]


def luma(x: Tensor) -> Tensor:
    return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])


def hf_energy(x: Tensor, sigma: float = 1.5) -> Tensor:
    """(N,) mean squared high-pass of luma: Y - gaussian_blur(Y, sigma) (reflect borders)."""
    import kornia

    y = luma(x)
    k = 2 * math.ceil(3 * sigma) + 1
    hp = y - kornia.filters.gaussian_blur2d(y, (k, k), (sigma, sigma), border_type="reflect")
    return hp.square().mean((1, 2, 3))


def image_metrics(out: Tensor, gt: Tensor, maps_fn: PixelPerfectLoss) -> dict[str, float]:
    """Metrics of one output (1, 3, H, W), already clamped to [0, 1], against its ground truth."""
    import kornia

    mse = (out - gt).square().mean()
    maps = maps_fn.maps(out, gt)
    return {
        "psnr": float(10 * torch.log10(1 / mse.clamp_min(1e-12))),
        "ssim": float(kornia.metrics.ssim(out, gt, window_size=11).mean()),
        "blur": float(maps[:, 0].mean()),
        "noise": float(maps[:, 1].mean()),
        "other": float(maps[:, 2:].abs().mean()),
        "hf_ratio": float(hf_energy(out) / hf_energy(gt).clamp_min(1e-12)),
    }


@torch.no_grad()
def evaluate(net: nn.Module | None, task: str, images: Sequence[tuple[str, Tensor]], maps_fn: PixelPerfectLoss,
             keep: int = 0) -> tuple[dict[str, float], list[Tensor]]:
    """Mean metrics over ``images``; ``net=None`` evaluates the degraded input itself.

    The degradation of image ``i`` uses a generator seeded with ``EVAL_SEED + i`` (the same for
    every model). Also returns the (clamped) outputs of the first ``keep`` images."""
    rows, kept = [], []
    for i, (_, gt) in enumerate(images):
        gt = gt[None]
        x = degrade(task, gt, torch.Generator().manual_seed(EVAL_SEED + i))
        out = input_as_output(task, x) if net is None else net(x).clamp(0, 1)
        rows.append(image_metrics(out, gt, maps_fn))
        if i < keep:
            kept.append(out[0])
    means = {k: float(np.mean([r[k] for r in rows])) for k in METRICS}
    # a ratio: geometric mean, so that one smooth image (tiny gt energy) cannot dominate
    means["hf_ratio"] = float(np.exp(np.mean([np.log(max(r["hf_ratio"], 1e-12)) for r in rows])))
    means["images"] = len(rows)
    return means, kept


# ----------------------------------------------------------------------------- figure
def _detail_window(gt: Tensor, size: int) -> tuple[int, int]:
    """Top-left corner of the ``size`` x ``size`` window of ``gt`` with the most fine detail."""
    h, w = gt.shape[-2:]
    size = min(size, h, w)
    e = F.avg_pool2d(((luma(gt[None]) - F.avg_pool2d(luma(gt[None]), 3, 1, 1)) ** 2), size, stride=max(size // 4, 1))
    idx = int(e.flatten().argmax())
    step = max(size // 4, 1)
    return (idx // e.shape[-1]) * step, (idx % e.shape[-1]) * step


def side_by_side(rows: Sequence[tuple[str, Sequence[tuple[str, Tensor]]]], path: str | Path, crop: int = 64,
                 zoom: int = 4, title: str = "") -> Path:
    """Write a PNG grid: one row per (row label, [(column label, image (3, H, W)), ...]).

    Every image of a row is cropped at the same window, chosen where the row's *last* image (the
    ground truth) has the most fine detail, and enlarged ``zoom`` times with nearest-neighbour
    interpolation so that blur, noise and halos are visible pixel by pixel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ncol = max(len(cols) for _, cols in rows)
    fig, axes = plt.subplots(len(rows), ncol, figsize=(2.3 * ncol, 2.5 * len(rows)), squeeze=False,
                             constrained_layout=True)
    for r, (label, cols) in enumerate(rows):
        ref = cols[-1][1]
        size = min(crop, *ref.shape[-2:])
        top, left = _detail_window(ref, size)
        for c in range(ncol):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(cols):
                ax.axis("off")
                continue
            name, im = cols[c]
            patch = im[:, top:top + size, left:left + size].clamp(0, 1)
            patch = patch.repeat_interleave(zoom, 1).repeat_interleave(zoom, 2)
            ax.imshow((patch.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8), interpolation="nearest")
            ax.set_title(name, fontsize=9)
            if c == 0:
                ax.set_ylabel(label, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------- one task, several losses
def run_task(task: str, losses: Sequence[str] = LOSSES, *, steps: int = 1500, batch: int = 8, crop: int = 64,
             lam: float = 0.1, lr: float = 1e-3, seed: int = 0, train_dir: str | Path = "../shared/data/kodak24",
             eval_dirs: Sequence[str | Path] = ("../shared/data/cbsd68", "../shared/data/cset14"),
             eval_images: int | None = None, eval_size: int = 256, out: str | Path | None = None,
             keep: int = 1, log_every: int = 0, guard: float = GUARD) -> dict:
    """Train every loss variant of ``task`` and evaluate it (plus the input baseline).

    Returns ``{"task", "config", "results": {variant: {"train": ..., folder: metrics}},
    "figure_rows": [(label, [(column, image), ...]), ...]}``; the figure rows hold the first
    ``keep`` images of each evaluation folder (input, each loss, ground truth). With ``out``, saves
    ``model-{task}-{loss}.pt`` and ``metrics-{task}.json`` there."""
    if task not in TASKS:
        raise ValueError(f"task: expected one of {TASKS}, got {task!r}")
    crops = RandomCrops(str(train_dir), size=crop, seed=seed)
    evals = {Path(d).name: load_eval(d, eval_images, eval_size) for d in eval_dirs}
    maps_fn = PixelPerfectLoss()
    results: dict[str, dict] = {"input": {}}
    shown: dict[str, list[tuple[str, Tensor]]] = {}
    for folder, images in evals.items():
        results["input"][folder], kept = evaluate(None, task, images, maps_fn, keep)
        for j, im in enumerate(kept):
            shown[f"{folder}/{images[j][0]}"] = [("input" if task == "denoise" else "input (bicubic)", im)]
    out_dir = Path(out) if out is not None else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    for loss in losses:
        net, info = train(task, loss, steps=steps, batch=batch, crop=crop, lam=lam, lr=lr, seed=seed,
                          crops=crops, log_every=log_every, guard=guard)
        results[loss] = {"train": info}
        for folder, images in evals.items():
            results[loss][folder], kept = evaluate(net, task, images, maps_fn, keep)
            for j, im in enumerate(kept):
                shown[f"{folder}/{images[j][0]}"].append((LOSS_LABELS[loss], im))
        if out_dir is not None:
            torch.save(net.state_dict(), out_dir / f"model-{task}-{loss}.pt")
    for folder, images in evals.items():
        for j in range(min(keep, len(images))):
            shown[f"{folder}/{images[j][0]}"].append(("ground truth", images[j][1]))
    config = {"task": task, "losses": list(losses), "steps": steps, "batch": batch, "crop": crop, "lam": lam,
              "guard": guard, "guard_unguarded_variant": 0.0, "lr": lr, "seed": seed, "train": str(train_dir), "eval": [str(d) for d in eval_dirs],
              "eval_images": eval_images, "eval_size": eval_size}
    report = {"task": task, "config": config, "results": results,
              "figure_rows": [(f"{task}: {k}", v) for k, v in shown.items()]}
    if out_dir is not None:
        (out_dir / f"metrics-{task}.json").write_text(json.dumps({"config": config, "results": results}, indent=2))
    return report


def table(report: dict) -> str:
    """A plain-text table of one ``run_task`` report."""
    res = report["results"]
    folders = [k for k in res["input"]]
    lines = [f"{report['task']}: {'variant':<14} {'eval':<8} {'PSNR':>7} {'SSIM':>6} {'blur':>7} {'noise':>7} "
             f"{'other':>6} {'HF':>5} {'s/step':>7}"]
    for variant, r in res.items():
        for folder in folders:
            m = r[folder]
            step = f"{r['train']['step_s']:.3f}" if "train" in r else "-"
            lines.append(f"{'':<{len(report['task']) + 1}} {LOSS_LABELS.get(variant, variant):<14} {folder:<8} "
                         f"{m['psnr']:7.2f} {m['ssim']:6.3f} {m['blur']:+7.3f} {m['noise']:+7.3f} "
                         f"{m['other']:6.3f} {m['hf_ratio']:5.2f} {step:>7}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("--task", choices=TASKS, default="denoise")
    ap.add_argument("--loss", nargs="+", choices=LOSSES, default=list(LOSSES),
                    help="one or more loss variants (default: all)")
    ap.add_argument("--lam", type=float, default=0.1, help="weight of the PixelPerfectLoss term")
    ap.add_argument("--guard", type=float, default=GUARD,
                    help=f"guard weight of the PixelPerfectLoss variants (default {GUARD}; "
                         "blur+noise-unguarded always uses 0)")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=64, help="training crop size (even)")
    ap.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (cosine decay to 0)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train", default="../shared/data/kodak24", help="training photos")
    ap.add_argument("--eval", nargs="+", default=["../shared/data/cbsd68", "../shared/data/cset14"],
                    help="evaluation folders (never trained on)")
    ap.add_argument("--eval-images", type=int, default=None, help="first N images of each folder (default: all)")
    ap.add_argument("--eval-size", type=int, default=256, help="cap on the centre-crop side")
    ap.add_argument("--out", default="runs/downstream", help="models, metrics JSON and figure go here")
    ap.add_argument("--log-every", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (default 1: these tiny convolutions gain little from more, and "
                         "lose a lot when the cores are shared with another job)")
    args = ap.parse_args(argv)
    for flag, folder in [("--train", args.train)] + [("--eval", d) for d in args.eval]:
        if not Path(folder).is_dir():
            ap.error(f"{flag}: no such folder {folder} (the defaults are this repository's ../shared/data; "
                     "any folder of photos works, e.g. pixelperfect_loss/assets)")
    torch.set_num_threads(args.threads)
    report = run_task(args.task, args.loss, steps=args.steps, batch=args.batch, crop=args.crop, lam=args.lam,
                      lr=args.lr, seed=args.seed, train_dir=args.train, eval_dirs=args.eval,
                      eval_images=args.eval_images, eval_size=args.eval_size, out=args.out, keep=1,
                      log_every=args.log_every, guard=args.guard)
    print(table(report))
    fig = side_by_side(report["figure_rows"], Path(args.out) / f"side-by-side-{args.task}.png",
                       title=f"{args.task}, {args.steps} steps, lambda {args.lam}")
    print(f"wrote {Path(args.out) / f'metrics-{args.task}.json'} and {fig}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
