"""Shared training plumbing: seeding, atomic checkpoints, resuming, loss logs, distributed ranks."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) when not distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed(device: str | torch.device | None = None) -> bool:
    """Join the process group when launched by ``torchrun``: nccl when this rank trains on a GPU
    (see :func:`training_device`), gloo on the CPU; True if distributed."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available():
        return False
    if not dist.is_initialized():
        dev = training_device(device)
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return True


def training_device(device: str | torch.device | None = None) -> torch.device:
    """Where training runs: ``device`` if given, else the GPU of this process (``cuda:LOCAL_RANK``
    under torchrun) when CUDA is available, else the CPU.

    Example:
        >>> training_device("cpu")
        device(type='cpu')
    """
    if device is None:
        if not torch.cuda.is_available():
            return torch.device("cpu")
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device: expected 'cpu', 'cuda' or 'cuda:N', got {device!r}") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device: {device!r} was asked for, but CUDA is not available")
        if dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
        if dev.index >= torch.cuda.device_count():
            raise ValueError(f"device: {device!r} does not exist ({torch.cuda.device_count()} GPU(s) here)")
    elif dev.type != "cpu":
        raise ValueError(f"device: expected 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    return dev


def finish_distributed() -> None:
    """Leave the process group (after a barrier) so that no rank exits while gloo's threads still run,
    which aborted a rank now and then ("terminate called without an active exception")."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def parameter_checksums(module: torch.nn.Module) -> list[float]:
    """Sum of every parameter of ``module`` on each rank (one entry per rank; one when not distributed)."""
    total = torch.stack([p.detach().double().sum() for p in module.parameters()]).sum().view(1)
    rank, world = rank_and_world()
    if world == 1:
        return [float(total)]
    out = [torch.zeros_like(total) for _ in range(world)]
    dist.all_gather(out, total)
    return [float(t) for t in out]


def step_generator(seed: int, step: int, rank: int = 0) -> torch.Generator:
    """A generator that depends only on (seed, step, rank): resuming replays the same samples."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 4099 + rank)


class StepStream(torch.utils.data.IterableDataset):
    """Yields ``make(step)`` for step = start .. stop - 1, in order.

    Used through a :class:`torch.utils.data.DataLoader` with worker processes, so that the
    distortion engine prepares the next steps' batches while the network trains on this one.
    Each worker takes every k-th step and the loader interleaves them back in order; since
    ``make(step)`` depends only on the step, the data is the same with any number of workers.
    """

    def __init__(self, make: Any, start: int, stop: int) -> None:
        self.make, self.start, self.stop = make, start, stop

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        k, i = (1, 0) if info is None else (info.num_workers, info.id)
        if info is not None:
            torch.set_num_threads(1)
        for step in range(self.start + i, self.stop, k):
            yield self.make(step)


def stream(make: Any, start: int, stop: int, workers: int) -> Any:
    """Iterator over ``make(step)`` for the steps start .. stop - 1, prepared by ``workers`` processes."""
    ds = StepStream(make, start, stop)
    if workers <= 0:
        return iter(ds)
    return iter(torch.utils.data.DataLoader(ds, batch_size=None, num_workers=workers, prefetch_factor=2,
                                            persistent_workers=False))


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_checkpoint(path: str | Path) -> dict[str, Any] | None:
    """The checkpoint at ``path``, or None when there is none."""
    path = Path(path)
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)


#: config entries a resumed run may change: where it runs and how the image folder is spelled
#: (neither changes the data or the updates, see ``train_predictor``)
_FREE_ON_RESUME = frozenset({"device", "images"})
#: entries of a second (tuning) phase, free to change while the checkpoint has not entered it
_TUNING = frozenset({"tune_steps", "tune_lr", "cross_weight"})
#: entries added to the predictor's config after some checkpoints were written, with the value those checkpoints
#: trained with (a checkpoint without the entry resumes as if it had this value)
_ADDED = {"hue": False}


def check_resume_config(saved: dict[str, Any], config: dict[str, Any], step: int) -> None:
    """Raise ValueError when a resumed run's ``config`` differs from the checkpoint's ``saved`` one in
    a setting that shapes the training (steps, batch, crop, learning rates, seed, width, ...): the
    result would silently mix two recipes. Tuning-phase settings may change while ``step`` has not
    passed the first phase (``saved["steps"]``): tuning variants start from one first-phase checkpoint.

    Example:
        >>> check_resume_config({"steps": 10, "cross_weight": 5.0}, {"steps": 10, "cross_weight": 10.0}, 10)
        >>> check_resume_config({"steps": 10, "batch": 16}, {"steps": 10, "batch": 8}, 4)
        Traceback (most recent call last):
        ...
        ValueError: --resume: the checkpoint was written with batch=16, this run asks for batch=8; resume with the checkpoint's settings, or start a new --out
    """
    free = _FREE_ON_RESUME | (_TUNING if step <= int(saved.get("steps", -1)) else frozenset())
    saved = {**{k: v for k, v in _ADDED.items() if k in config}, **saved}  # only where this run has the entry
    for key in sorted((saved.keys() | config.keys()) - free):
        if saved.get(key) != config.get(key):
            raise ValueError(f"--resume: the checkpoint was written with {key}={saved.get(key)!r}, this run asks for "
                             f"{key}={config.get(key)!r}; resume with the checkpoint's settings, or start a new --out")


def resume(path: str | Path, model: torch.nn.Module, opt: torch.optim.Optimizer,
           config: dict[str, Any] | None = None) -> int:
    """Restore ``model`` and ``opt`` from the checkpoint at ``path``; return the next step.
    With ``config``, first check it against the checkpoint's (:func:`check_resume_config`)."""
    ckpt = load_checkpoint(path)
    if ckpt is None:
        raise FileNotFoundError(f"--resume: no checkpoint at {path}")
    if config is not None and "config" in ckpt:
        check_resume_config(ckpt["config"], config, int(ckpt["step"]))
    model.load_state_dict(ckpt["model"], strict=True)
    opt.load_state_dict(ckpt["opt"])
    return int(ckpt["step"])


class LossLog:
    """Appends one JSON line per logged step to ``path`` (only on rank 0)."""

    def __init__(self, path: str | Path, enabled: bool = True) -> None:
        self.path, self.enabled = Path(path), enabled
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, **values: Any) -> None:
        if self.enabled:
            with self.path.open("a") as f:
                f.write(json.dumps(values) + "\n")


def cosine_lr(step: int, total: int, base: float, warmup: int = 200, floor: float = 0.01) -> float:
    """Linear warm-up then cosine decay to ``floor * base``."""
    import math

    if step < warmup:
        return base * (step + 1) / warmup
    p = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * p)))
