"""Training the relational scorer on the engine's ranked sets (the predictor stays frozen).

Each step draws sets of one reference and k versions of one recipe at growing strength (30% of
them made by operators outside the eight channels) and applies a pairwise RankNet objective: every
weaker version must score above every stronger one, and the reference (score 0) above all.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from ..engine import make_ranked_sets
from ..functional import run_predictor
from ..nets import RelationalScorer, scorer_features
from ..weights import find_weights, load_predictor, sha256
from .common import (LossLog, atomic_save, check_every, cosine_lr, publish_weights, step_generator, training_device,
                     training_images)
from .common import resume as resume_from


def ranknet_loss(scores: Tensor) -> Tensor:
    """Pairwise logistic loss for (N, K) scores whose index grows with distortion strength;
    the reference (score 0) counts as index -1.

    Example:
        >>> ranknet_loss(torch.tensor([[-1.0, -5.0, -9.0]])) < ranknet_loss(torch.tensor([[-9.0, -5.0, -1.0]]))
        tensor(True)
    """
    s = torch.cat([torch.zeros_like(scores[:, :1]), scores], 1)
    diff = s[:, :, None] - s[:, None, :]  # diff[i, j] = s_i - s_j, want > 0 for i < j
    k = s.shape[1]
    upper = torch.triu(torch.ones(k, k, dtype=torch.bool, device=s.device), diagonal=1)
    return F.softplus(-diff[:, upper]).mean()


#: share of ranked sets made by operators outside the eight channels: 0.5 since v6 (0.3 before), with the full
#: recipe's steps doubled to 1,200. Checked on kodak24 (the training photos; the evaluation folders were not used):
#: centre-pixel and block-mean pixelations of 24 centre crops with blocks of 2 to 8 pixels, where grid-aligned
#: 4- and 8-pixel blocks light the predictor's JPEG map, had 47 of 288 adjacent sizes inverted with v5's scorer
#: (0.3, 600 steps) and 1 with 0.5 and 1,200 steps (weights/README.md, "Scorer recipe, v6")
P_OTHER = 0.5


def train_scorer(images: list[Tensor] | str | Path | None, out: str | Path, *, predictor_path: str | Path | None = None,
                 steps: int = 1200, batch: int = 8, k: int = 4, crop: int = 128, lr: float = 1e-2, seed: int = 0,
                 ckpt_every: int = 250, log_every: int = 25, resume: bool = False, progress: bool = True,
                 p_other: float = P_OTHER, device: str | torch.device | None = None) -> RelationalScorer:
    """Train a :class:`RelationalScorer` and write ``out/scorer.safetensors``; ``device`` as for
    :func:`~pixelperfect_loss.train.predictor.train_predictor` (default: the GPU when there is one)."""
    check_every(ckpt_every=ckpt_every, log_every=log_every)
    out = Path(out)
    dev = training_device(device)
    try:
        predictor_path = find_weights("predictor", predictor_path)
        predictor = load_predictor(predictor_path).to(dev)
    except (FileNotFoundError, ValueError) as exc:
        raise type(exc)(f"--predictor: {exc}") from None
    torch.manual_seed(seed)
    scorer = RelationalScorer().to(dev)
    opt = torch.optim.Adam(scorer.parameters(), lr=lr)
    ckpt_path = out / "scorer.ckpt"
    data, images_sha256 = training_images(images, crop, seed + 1)
    config: dict[str, Any] = dict(steps=steps, batch=batch, k=k, crop=crop, lr=lr, seed=seed, p_other=p_other,
                                  device=dev.type,
                                  images=str(images) if images is not None else "embedded")
    # the inputs, by content: in the checkpoint, not in the weights' metadata
    ckpt_config = {**config, "images_sha256": images_sha256, "predictor_sha256": sha256(predictor_path)}
    start, seconds = resume_from(ckpt_path, scorer, opt, ckpt_config) if resume else (0, 0.0)
    log = LossLog(out / "scorer-log.jsonl", start=start)
    t0 = time.time() - seconds
    for step in tqdm(range(start, steps), initial=start, total=steps, desc="scorer", disable=not progress):
        sets = make_ranked_sets(data.batch(step * batch, batch).to(dev), k, step_generator(seed, step), p_other=p_other)
        with torch.no_grad():
            ref = sets.reference.repeat_interleave(k, 0)
            img = sets.images.flatten(0, 1)
            feats = scorer_features(run_predictor(predictor, ref, img, lowres=True), ref, img)
        scores = scorer(feats).view(batch, k)
        loss = ranknet_loss(scores)
        for group in opt.param_groups:
            group["lr"] = cosine_lr(step, steps, lr, warmup=50)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % log_every == 0 or step == steps - 1:
            order_ok = (scores[:, :-1] > scores[:, 1:]).float().mean().item()
            log.write(step=step, loss=loss.item(), pairs_in_order=order_ok, seconds=round(time.time() - t0, 1))
        if (step + 1) % ckpt_every == 0 or step == steps - 1:
            atomic_save({"model": scorer.state_dict(), "opt": opt.state_dict(), "step": step + 1,
                         "config": ckpt_config, "seconds": time.time() - t0}, ckpt_path)
    publish_weights(scorer, out / "scorer.safetensors", config)
    return scorer
