"""Shared helpers for the benchmark scripts: machine description, timing, memory, RESULTS.md.

Memory is measured as *autograd saved-tensor memory*: the bytes of the unique storages that
autograd saves for backward during ``fn`` (captured with
``torch.autograd.graph.saved_tensors_hooks``), plus those of the tensors that activation
checkpointing keeps for its recomputation, plus the storages of the tensor(s) ``fn``
returns. On CPU there is no reliable allocator statistic (RSS growth is dominated by the
allocator's caching and by whatever else the process holds), and ``tracemalloc`` does not see
torch's allocations. For a forward + backward pass the saved activations are the dominant,
size-dependent memory cost, so this is the quantity compared. On CUDA
``torch.cuda.max_memory_allocated`` is used instead.
"""

from __future__ import annotations

import datetime
import os
import platform
import re
import statistics
import time
from pathlib import Path
from typing import Callable, Iterable, Sequence

import torch

from pixelperfect_loss.weights import ENV_VAR

RESULTS = Path(__file__).parent / "RESULTS.md"


def other_weights(arg: str | None = None) -> str | None:
    """The weights a benchmark evaluates when they are not the packaged ones: ``arg`` (its ``--weights``), else
    the ``PIXELPERFECT_WEIGHTS`` folder the loaders read first; None for the packaged weights.

    Example:
        >>> other_weights("runs/v7/predictor.safetensors")
        'runs/v7/predictor.safetensors'
    """
    return arg or os.environ.get(ENV_VAR) or None


def weights_label(arg: str | None = None) -> str:
    """How a report names the weights it evaluated: :func:`other_weights`, or ``packaged``."""
    return other_weights(arg) or "packaged"


def machine_line() -> str:
    """One line describing the CPU, core count, torch version, thread count and today's date."""
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"Machine: {cpu}, {os.cpu_count()} cores, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads, {datetime.date.today():%Y-%m-%d}")


def write_section(name: str, markdown: str, command: str) -> None:
    """Replace (or append) the ``name`` block of benchmarks/RESULTS.md."""
    block = (f"<!-- begin:{name} -->\n## {name}\n\nCommand: `{command}`\n\n{machine_line()}\n\n"
             f"{markdown.strip()}\n<!-- end:{name} -->")
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    pattern = re.compile(rf"<!-- begin:{re.escape(name)} -->.*?<!-- end:{re.escape(name)} -->",
                         re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip("\n") + "\n\n" + block
    RESULTS.write_text(text.rstrip("\n") + "\n")


def write_weights_section(name: str, markdown: str, command: str, weights: str | None = None) -> bool:
    """:func:`write_section` for a benchmark of the trained weights. RESULTS.md holds the packaged weights'
    figures only: for :func:`other_weights` (``weights``, or the environment variable) nothing is written and a
    line says so. Returns whether the block was written."""
    other = other_weights(weights)
    if other is not None:
        print(f"benchmarks/RESULTS.md not written: these are the figures of {other}, not of the packaged weights")
        return False
    write_section(name, markdown, command)
    return True


def time_call(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall-clock seconds of ``fn()`` over ``repeats`` runs after ``warmup`` runs (with a
    CUDA synchronisation around each run when CUDA is in use, so that GPU work is counted)."""
    for _ in range(warmup):
        fn()
    # decided after the warm-up, which may be what starts CUDA
    sync = torch.cuda.synchronize if torch.cuda.is_available() and torch.cuda.is_initialized() else (lambda: None)
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_interleaved(fns: Sequence[Callable[[], object]], repeats: int) -> list[float]:
    """Median seconds of each of ``fns`` over ``repeats`` rounds of one call of each, in turn (after one
    warm-up call each), so that a slow spell of the machine hits them all alike."""
    times: list[list[float]] = [[] for _ in fns]
    for r in range(repeats):
        for fn, t in zip(fns, times):
            t.append(time_call(fn, 1, warmup=int(r == 0)))
    return [statistics.median(t) for t in times]


def peak_memory(fn: Callable[[], object], device: str = "cpu",
                exclude: Iterable[torch.Tensor] = ()) -> int:
    """Bytes used by one call of ``fn`` (see the module docstring for what is counted).

    On CPU: unique storages saved for backward, held by ``torch.utils.checkpoint.checkpoint`` for
    recomputation, and returned by ``fn``;
    storages of ``exclude`` (e.g. the network's parameters) are not counted.
    On CUDA: ``torch.cuda.max_memory_allocated`` growth over the memory allocated before.
    """
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base

    seen = {t.untyped_storage().data_ptr() for t in exclude}
    total = 0

    def count(t: torch.Tensor) -> None:
        nonlocal total
        storage = t.untyped_storage()
        if storage.data_ptr() not in seen:
            seen.add(storage.data_ptr())
            total += storage.nbytes()

    def pack(t: torch.Tensor) -> torch.Tensor:
        count(t)
        return t

    # activation checkpointing recomputes in backward instead of saving, but keeps its tensor arguments alive
    # until then: count them too (the predictor's fixed features and pair head are checkpointed in a loss)
    import torch.utils.checkpoint as ckpt_module

    from pixelperfect_loss.nets import predictor as predictor_module

    original = ckpt_module.checkpoint

    def checkpoint(function: Callable[..., object], *args: object, **kwargs: object) -> object:
        for a in args:
            if isinstance(a, torch.Tensor):
                count(a)
        return original(function, *args, **kwargs)

    ckpt_module.checkpoint = predictor_module.checkpoint = checkpoint
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = fn()
    finally:
        ckpt_module.checkpoint = predictor_module.checkpoint = original
    for t in out if isinstance(out, (tuple, list)) else [out]:
        if isinstance(t, torch.Tensor):
            count(t)
    return total
