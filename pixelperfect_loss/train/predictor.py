"""Training the distortion predictor on engine triplets.

The objective is a per-channel L1 regression of the maps at 1/4 resolution, balanced
between channels and between labelled (|label| > 0.02) and unlabelled pixels, plus an
image-level term on the per-image mean of each map. Because the predictor is exactly
anti-symmetric and the loss is odd-symmetric, the swapped order (image, reference) against
the negated labels gives the same loss: both orders are trained by construction, and the
engine itself draws swapped pairs half the time.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from ..data import RandomCrops
from ..engine import make_triplets
from ..nets import DistortionPredictor
from .common import (LossLog, atomic_save, check_every, cosine_lr, parameter_checksums, publish_weights,
                     rank_and_world, step_generator, stream, training_device, training_images)
from .common import resume as resume_from

#: a cell counts as labelled for a channel where |label| exceeds this (the map loss's balance, the benchmark's split)
LABELLED = 0.02


def dihedral(x: Tensor, k: int) -> Tensor:
    """The k-th of the 8 rotations/reflections of the square grid (k = 0: the identity).

    Example:
        >>> x = torch.arange(4.0).view(1, 1, 2, 2)
        >>> [dihedral(x, k).flatten().tolist() for k in (0, 1, 4)]
        [[0.0, 1.0, 2.0, 3.0], [1.0, 3.0, 0.0, 2.0], [1.0, 0.0, 3.0, 2.0]]
    """
    if k % 4:
        x = torch.rot90(x, k % 4, (-2, -1))
    if k % 8 >= 4:
        x = torch.flip(x, (-1,))
    return x.contiguous()


class _Triplets:
    """Picklable maker of one step's triplets (for data-loader workers).

    With ``reuse`` r > 1, the engine makes one batch every r steps and the steps in between see
    its rotations and reflections (:func:`dihedral`): each one is an exactly labelled triplet
    (the labels move with the pixels, and square crops whose side is a multiple of 8 keep the
    JPEG block grid on the grid), at 1/r of the engine's cost per step.
    """

    def __init__(self, data: RandomCrops, batch: int, seed: int, rank: int, world: int, reuse: int = 1,
                 device: torch.device | str = "cpu") -> None:
        self.data, self.batch, self.seed, self.rank, self.world = data, batch, seed, rank, world
        self.reuse, self.device = reuse, device
        self._cache: tuple[int, tuple[Tensor, ...]] | None = None

    def __call__(self, step: int) -> tuple[Tensor, Tensor, Tensor]:
        base, k = divmod(step, self.reuse)
        if self._cache is None or self._cache[0] != base:
            clean = self.data.batch((base * self.world + self.rank) * self.batch, self.batch).to(self.device)
            # the random draws stay on the CPU generator: the same data on every device
            self._cache = (base, tuple(make_triplets(clean, step_generator(self.seed, base, self.rank))))
        return tuple(dihedral(t, k) for t in self._cache[1])


def map_loss(pred: Tensor, labels: Tensor, image_weight: float = 1.0,
             cross_weight: float = 0.0, overlap_weight: float = 1.0) -> tuple[Tensor, dict[str, float]]:
    """Balanced map regression loss; ``pred`` and ``labels`` are (N, 8, h, w) at the same size.

    Per channel, the mean error on its labelled cells plus on its unlabelled cells (``pixel``),
    and the error of each map's image mean (``image``). ``cross`` is logged as a diagnostic of
    cross-talk: per channel, the mean |map| on its unlabelled cells where another channel is
    labelled. Its default weight is 0: the training recipe weighs it only in a second, tuning phase
    (:func:`train_predictor`), because from the start of training it made units die. ``overlap_weight``
    multiplies the error on labelled cells where two or more channels are labelled (still divided by the
    count of labelled cells), where a network tuned against cross-talk hedges with faint maps.

    Example:
        >>> y = torch.zeros(2, 8, 4, 4)
        >>> map_loss(y, y)[0].item()
        0.0
    """
    on = (labels.abs() > LABELLED).to(pred.dtype)
    off = 1 - on
    err = (pred - labels).abs()
    dims = (0, 2, 3)
    w_on = on if overlap_weight == 1 else on * (1 + (overlap_weight - 1) * (on.sum(1, keepdim=True) >= 2))
    l_on = (err * w_on).sum(dims) / on.sum(dims).clamp_min(1)
    l_off = (err * off).sum(dims) / off.sum(dims).clamp_min(1)
    cross = off * on.amax(1, keepdim=True)
    l_cross = ((err * cross).sum(dims) / cross.sum(dims).clamp_min(1)).sum()
    pix = (l_on + l_off).sum()
    img = (pred.mean((2, 3)) - labels.mean((2, 3))).abs().sum(1).mean()
    total = pix + cross_weight * l_cross + image_weight * img
    return total, {"pixel": pix.item(), "cross": l_cross.item(), "image": img.item()}


def train_predictor(images: list[Tensor] | str | Path | None, out: str | Path, *, steps: int = 10000,
                    batch: int = 16, crop: int = 128, lr: float = 1e-3, seed: int = 0, width: int = 32,
                    ckpt_every: int = 250, log_every: int = 25, resume: bool = False,
                    progress: bool = True, stop_after: int | None = None, workers: int = 0,
                    reuse: int = 1, tune_steps: int = 0, tune_lr: float = 2e-4, cross_weight: float = 0.0,
                    overlap_weight: float = 1.0, hue: bool = True, stats: bool = True,
                    device: str | torch.device | None = None) -> DistortionPredictor:
    """Train a :class:`DistortionPredictor` and write ``out/predictor.safetensors``.

    A checkpoint ``out/predictor.ckpt`` is written atomically every ``ckpt_every`` steps; with
    ``resume=True`` training continues from it. Losses go to ``out/predictor-log.jsonl``.
    Each step's samples depend only on (seed, step, rank), so a resumed run sees the same data.
    ``stop_after`` ends the run after that many steps (as an interruption would), leaving the
    checkpoint to resume from. ``workers`` > 0 makes the engine's triplets in that many background
    processes, overlapped with training (same data as ``workers=0``). ``reuse`` > 1 shows each
    engine batch ``reuse`` times (1 to 8), rotated and reflected (see :class:`_Triplets`).
    ``device`` (default: the GPU when there is one, see :func:`training_device`) runs the network
    and, with ``workers=0``, the engine too; the data are the same on every device (up to float
    rounding), being drawn from the same CPU generators.

    ``tune_steps`` > 0 adds a second phase after ``steps``: a fresh warm-up and cosine decay from
    ``tune_lr``, with the cross-talk term of :func:`map_loss` weighted by ``cross_weight`` and its
    overlapping labelled cells by ``overlap_weight`` (0 and 1 in the first phase). Starting it from a
    trained network lets the term cut cross-talk; from the start of training it made units die
    (weights/README.md, "Cross-talk tuning"). ``hue`` adds the hue direction to the network's fixed
    inputs, ``stats`` the sum of both images' whole-image tone statistics to its pair head (both on in the
    shipped weights since v7; weights/README.md).
    """
    if tune_steps < 0 or cross_weight < 0:
        raise ValueError(f"tune_steps and cross_weight: expected >= 0, got {tune_steps} and {cross_weight}")
    if not overlap_weight > 0:
        raise ValueError(f"overlap_weight: expected > 0, got {overlap_weight}")
    if not 1 <= reuse <= 8:
        raise ValueError(f"reuse: expected 1 to 8 (the dihedral transforms of a square), got {reuse}")
    check_every(ckpt_every=ckpt_every, log_every=log_every)
    rank, world = rank_and_world()
    dev = training_device(device)
    out = Path(out)
    torch.manual_seed(seed)
    net = DistortionPredictor(width=width, hue=hue, stats=stats).to(dev)  # initial weights drawn on the CPU: the same on every device
    model: torch.nn.Module = net
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(net, device_ids=[dev.index] if dev.type == "cuda" else None)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    ckpt_path = out / "predictor.ckpt"
    data, images_sha256 = training_images(images, crop, seed)
    config: dict[str, Any] = dict(steps=steps, batch=batch, crop=crop, lr=lr, seed=seed, width=width,
                                  world=world, reuse=reuse, tune_steps=tune_steps, tune_lr=tune_lr,
                                  cross_weight=cross_weight, overlap_weight=overlap_weight, device=dev.type,
                                  images=str(images) if images is not None else "embedded", hue=hue,
                                  stats=stats)
    ckpt_config = {**config, "images_sha256": images_sha256}  # not in the weights' metadata
    start, seconds = resume_from(ckpt_path, net, opt, ckpt_config) if resume else (0, 0.0)
    log = LossLog(out / "predictor-log.jsonl", enabled=rank == 0, start=start)
    total = steps + tune_steps
    bar = tqdm(range(start, total), initial=start, total=total, desc="predictor", disable=not progress or rank != 0)
    engine_device = dev if workers == 0 else torch.device("cpu")  # worker processes stay off the GPU
    batches = stream(_Triplets(data, batch, seed, rank, world, reuse, engine_device), start, total, workers, reuse)
    t0 = time.time() - seconds
    model.train()
    for step, triplet in zip(bar, batches):
        ref, img, labels = (t.to(dev, non_blocking=True) for t in triplet)
        for group in opt.param_groups:
            group["lr"] = cosine_lr(step, steps, lr) if step < steps else cosine_lr(step - steps, tune_steps, tune_lr)
        pred = model(ref, img, lowres=True)
        loss, parts = map_loss(pred, F.avg_pool2d(labels, 4), cross_weight=cross_weight if step >= steps else 0.0,
                               overlap_weight=overlap_weight if step >= steps else 1.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        if step % log_every == 0 or step == total - 1:
            log.write(step=step, loss=loss.item(), **parts, lr=opt.param_groups[0]["lr"],
                      seconds=round(time.time() - t0, 1))
            bar.set_postfix(loss=f"{loss.item():.4f}")
        interrupted = stop_after is not None and step + 1 >= stop_after
        if rank == 0 and ((step + 1) % ckpt_every == 0 or step == total - 1 or interrupted):
            atomic_save({"model": net.state_dict(), "opt": opt.state_dict(), "step": step + 1,
                         "config": ckpt_config, "seconds": time.time() - t0}, ckpt_path)
        if interrupted:
            return net
    sums = parameter_checksums(net)  # every rank must end with the same weights
    log.write(step=total, rank_checksums=sums)
    if len(set(sums)) != 1:
        raise RuntimeError(f"distributed ranks diverged: parameter sums {sums}")
    if rank == 0:
        publish_weights(net, out / "predictor.safetensors", config)
    return net
