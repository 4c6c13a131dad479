"""Shared training plumbing: seeding, atomic checkpoints, resuming, loss logs, distributed ranks."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from ..data import RandomCrops, embedded_image_paths, image_paths, read_image


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
    """Yields ``[make(step) for step in block]`` for the blocks of ``group`` consecutive steps (aligned to
    multiples of ``group``) covering start .. stop - 1, in order.

    Used through a :class:`torch.utils.data.DataLoader` with worker processes, so that the
    distortion engine prepares the next steps' batches while the network trains on this one.
    Each worker takes every k-th block and the loader interleaves them back in order; since
    ``make(step)`` depends only on the step, the data is the same with any number of workers. A
    block stays in one worker, so a maker that reuses one engine batch for ``group`` steps makes it once.
    """

    def __init__(self, make: Any, start: int, stop: int, group: int = 1) -> None:
        self.make, self.start, self.stop, self.group = make, start, stop, group

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        k, i = (1, 0) if info is None else (info.num_workers, info.id)
        if info is not None:
            torch.set_num_threads(1)
        g = self.group
        first = self.start // g
        for b in range(first + i, -(-self.stop // g), k):
            yield [self.make(step) for step in range(max(self.start, b * g), min(self.stop, (b + 1) * g))]


def stream(make: Any, start: int, stop: int, workers: int, group: int = 1) -> Any:
    """Iterator over ``make(step)`` for the steps start .. stop - 1, prepared by ``workers`` processes, each
    making blocks of ``group`` consecutive steps (see :class:`StepStream`)."""
    ds = StepStream(make, start, stop, group)
    if workers > 0:
        ds = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=workers, prefetch_factor=2,
                                         persistent_workers=False)
    return itertools.chain.from_iterable(ds)


def umask() -> int:
    """The process's umask, read without changing it where Linux shows it (/proc/self/status)."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError):
        mask = os.umask(0o022)  # elsewhere: set and restore at once
        os.umask(mask)
        return mask


def share(path: str | Path) -> None:
    """Give ``path`` the permissions of a newly created file (0o666 & ~umask): mkstemp and safetensors write 0o600."""
    os.chmod(path, 0o666 & ~umask())


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        share(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def publish_weights(module: torch.nn.Module, path: str | Path, config: dict[str, Any]) -> None:
    """:func:`~pixelperfect_loss.weights.save_weights` (the same bytes), readable as :func:`share` makes it."""
    from ..weights import save_weights

    path = Path(path)
    tmp = save_weights(module, path.with_name(path.name + ".tmp"), config)
    share(tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> dict[str, Any] | None:
    """The checkpoint at ``path``, or None when there is none; ValueError when it cannot be read."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        raise ValueError(f"--resume: {path} is not a readable checkpoint ({type(exc).__name__}); delete it, "
                         "or start afresh without --resume") from None


def training_images(images: list[Tensor] | str | Path | None, crop: int,
                    seed: int) -> tuple[RandomCrops, str | None]:
    """:class:`~pixelperfect_loss.data.RandomCrops` of ``images`` (a folder, None: the embedded photos, or tensors),
    with errors that name the flag and the file, and a fingerprint of the files for resuming: "embedded", the
    sha256 of the folder's sorted file names and sizes, or None for tensors."""
    if images is not None and not isinstance(images, (str, Path)):
        return RandomCrops(images, size=crop, seed=seed), None
    try:
        paths = embedded_image_paths() if images is None else image_paths(images)
        tensors = [read_image(p) for p in paths]  # as RandomCrops reads them
    except (FileNotFoundError, ValueError) as exc:
        raise type(exc)(f"--images: {str(exc).partition(': ')[2]}") from None
    side, path = min((min(t.shape[-2:]), p) for t, p in zip(tensors, paths))
    if side < crop:
        raise ValueError(f"--crop {crop}: larger than the image {path} ({side} pixels on its short side); use --crop "
                         f"{side // 16 * 16} or less, or larger images")
    listing = "".join(f"{p.name}\t{p.stat().st_size}\n" for p in paths)
    fingerprint = "embedded" if images is None else hashlib.sha256(listing.encode()).hexdigest()
    return RandomCrops(tensors, size=crop, seed=seed), fingerprint


#: config entries a resumed run may change: where it runs and how the image folder is spelled
#: (neither changes the data or the updates, see ``train_predictor``)
_FREE_ON_RESUME = frozenset({"device", "images"})
#: entries of a second (tuning) phase, free to change while the checkpoint has not entered it
_TUNING = frozenset({"tune_steps", "tune_lr", "cross_weight", "overlap_weight"})
#: entries added to the predictor's config after some checkpoints were written, with the value those checkpoints
#: trained with (a checkpoint without the entry resumes as if it had this value)
_ADDED = {"hue": False, "stats": False, "overlap_weight": 1.0}
#: entries of a checkpoint's config (not of the weights' metadata) naming its inputs by content, and their flags; a
#: checkpoint written before them resumes unchecked
_INPUTS = {"images_sha256": "--images", "predictor_sha256": "--predictor"}


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
    saved = {**{k: config[k] for k in _INPUTS if k in config}, **saved}  # written before the entry: unchecked
    for key in sorted((saved.keys() | config.keys()) - free):
        if saved.get(key) == config.get(key):
            continue
        if key in _INPUTS:
            flag = _INPUTS[key]
            raise ValueError(f"--resume: {flag} is not what the checkpoint was trained on ({key} "
                             f"{str(config.get(key))[:12]} here, {str(saved.get(key))[:12]} in the checkpoint); use "
                             f"the same {flag[2:]}, or start a new --out")
        raise ValueError(f"--resume: the checkpoint was written with {key}={saved.get(key)!r}, this run asks for "
                         f"{key}={config.get(key)!r}; resume with the checkpoint's settings, or start a new --out")


def resume(path: str | Path, model: torch.nn.Module, opt: torch.optim.Optimizer,
           config: dict[str, Any] | None = None) -> tuple[int, float]:
    """Restore ``model`` and ``opt`` from the checkpoint at ``path``; return the next step and the seconds
    trained so far. With ``config``, first check it against the checkpoint's (:func:`check_resume_config`)."""
    ckpt = load_checkpoint(path)
    if ckpt is None:
        raise FileNotFoundError(f"--resume: no checkpoint at {path}")
    if config is not None and "config" in ckpt:
        check_resume_config(ckpt["config"], config, int(ckpt["step"]))
    model.load_state_dict(ckpt["model"], strict=True)
    opt.load_state_dict(ckpt["opt"])
    return int(ckpt["step"]), float(ckpt.get("seconds", 0.0))


def _before(line: str, step: int) -> bool:
    try:
        return json.loads(line)["step"] < step
    except (ValueError, KeyError, TypeError):  # a line torn by a kill
        return False


class LossLog:
    """Appends one JSON line per logged step to ``path`` (only on rank 0). A run from step ``start``
    keeps the lines of the steps before it: none in a fresh run, those before the checkpoint in a resumed one."""

    def __init__(self, path: str | Path, enabled: bool = True, start: int = 0) -> None:
        self.path, self.enabled = Path(path), enabled
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            old = self.path.read_text().splitlines(keepends=True) if start and self.path.is_file() else []
            self.path.write_text("".join(line for line in old if _before(line, start)))

    def write(self, **values: Any) -> None:
        if self.enabled:
            with self.path.open("a") as f:
                f.write(json.dumps(values) + "\n")


def check_every(**every: int) -> None:
    """Raise ValueError unless each interval (``ckpt_every``, ``log_every``) is >= 1."""
    for name, v in every.items():
        if v < 1:
            raise ValueError(f"{name}: expected an interval of >= 1 steps, got {v}")


def cosine_lr(step: int, total: int, base: float, warmup: int = 200, floor: float = 0.01) -> float:
    """Linear warm-up then cosine decay to ``floor * base``."""
    import math

    if step < warmup:
        return base * (step + 1) / warmup
    p = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * p)))
