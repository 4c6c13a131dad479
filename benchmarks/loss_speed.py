"""Speed and memory of PixelPerfectLoss against common image losses, and how its cost grows.

Every peer is a loss callable ``f(output, target) -> scalar``, measured in the same run:

- PixelPerfectLoss (ours): the packaged, trained predictor weights, frozen.
- L1; SSIM (``1 - kornia.metrics.ssim(out, tgt, 11).mean()``); MS-SSIM
  (``1 - pytorch_msssim.ms_ssim(out, tgt, data_range=1)``: 5 scales of a dyadic pyramid, 11x11
  Gaussian window, as published; needs sides > 160). ``--kornia-msssim`` adds kornia's
  ``MS_SSIMLoss``, which filters all 5 scales at full resolution with a 33x33 window: about 180x
  our time at (8, 3, 256, 256) and minutes per call at 1024x1024, so it is left out by default.
- LPIPS-AlexNet-, LPIPS-VGG16- and DISTS-sized networks: their published architectures written
  here with **random weights**: timing and memory stand-ins only, not usable losses.

For each shape: median forward seconds (``torch.no_grad``), median forward + backward seconds
(gradient w.r.t. ``output`` only, parameters frozen) and autograd saved-tensor memory of
forward + backward (``benchmarks.common.peak_memory``); the forward + backward of the calls under
``SLOW_SECONDS`` is then timed again interleaved (one call of each loss per round), because this
machine's slow spells moved the ratios of rows timed one after the other by up to a third between
runs (SSIM's own backward still varies by about 2x between runs). Then the scaling of forward +
backward for ours, L1 and LPIPS-AlexNet with image size (batch 1, 256 to 2048) and batch size (size
256, batch 1 to 16), per pixel relative to the smallest case; a case whose shape is in a shape table
reuses that table's timing, so one measurement is never reported as two numbers. A measurement whose estimate (from the
same loss's per-pixel cost so far) exceeds 60 s is skipped and reported as such.

Run from the repository root:
    python -m benchmarks.loss_speed --threads 1           # writes benchmarks/RESULTS.md
    python -m benchmarks.loss_speed --quick --threads 1   # tiny shapes, 1 repeat, prints only

Calls taking (or estimated to take) over 5 s get 1 timed repeat instead of 3, with the memory
call as their warm-up: this covers the VGG16-sized and DISTS-sized rows. The quick run
prints an estimate of the full run's duration, linear in pixels from its own timings; the full
run takes about 5-8 minutes on 2 cores, nearly all of it in those two rows.

``--threads N`` sets ``torch.set_num_threads(N)``; with other CPU-heavy work running use 1.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Callable

import kornia
import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.common import peak_memory, time_call, time_interleaved, write_section
from benchmarks.predictor_speed import LpipsAlexSized
from pixelperfect_loss import PixelPerfectLoss

MAX_SECONDS = 60.0  # skip a single call estimated to take longer than this
SLOW_SECONDS = 5.0  # calls estimated or measured slower than this: 1 repeat, no forward warm-up
INTERLEAVED_ROUNDS = 7  # shape tables: rounds of one fwd+bwd call of each loss under SLOW_SECONDS
OURS = "PixelPerfectLoss (ours)"
VGG16_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
VGG16_TAPS = (3, 8, 15, 22, 29)  # indices of relu1_2, relu2_2, relu3_3, relu4_3, relu5_3


def vgg16_features(pool: Callable[[int], nn.Module]) -> nn.Sequential:
    """VGG16's convolutional features up to relu5_3, with ``pool(channels)`` for each "M"."""
    layers, c = [], 3
    for v in VGG16_CFG:
        if v == "M":
            layers.append(pool(c))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU()]
            c = v
    return nn.Sequential(*layers)


def unit(x: torch.Tensor) -> torch.Tensor:
    return x / torch.sqrt((x * x).sum(1, keepdim=True) + 1e-10)


class LpipsVggSized(nn.Module):
    """LPIPS (VGG16 variant) architecture with random weights, for cost comparisons only."""

    def __init__(self) -> None:
        super().__init__()
        self.features = vgg16_features(lambda c: nn.MaxPool2d(2, 2))
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in (64, 128, 256, 512, 512))

    def taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in VGG16_TAPS:
                out.append(unit(x))
        return out

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        pairs = zip(self.taps(output), self.taps(target))
        return sum(lin((a - b) ** 2).mean() for lin, (a, b) in zip(self.lins, pairs))


class L2Pool(nn.Module):
    """DISTS's L2 pooling: sqrt of a stride-2 Hann-window blur of x**2, per channel."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        h = torch.tensor([0.5, 1.0, 0.5])
        k = h[:, None] * h[None, :]
        self.register_buffer("kernel", (k / k.sum()).expand(channels, 1, 3, 3).contiguous())
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(F.conv2d(x * x, self.kernel, stride=2, padding=1, groups=self.channels) + 1e-12)


class DistsSized(nn.Module):
    """DISTS architecture (VGG16 with L2 pooling, 6 stages incl. the input), random weights."""

    CHANNELS = (3, 64, 128, 256, 512, 512)

    def __init__(self) -> None:
        super().__init__()
        self.features = vgg16_features(L2Pool)
        n = sum(self.CHANNELS)
        self.alpha = nn.Parameter(torch.rand(1, n, 1, 1))
        self.beta = nn.Parameter(torch.rand(1, n, 1, 1))

    def stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = [x]
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in VGG16_TAPS:
                out.append(x)
        return out

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        w = self.alpha.sum() + self.beta.sum()
        alphas = torch.split(self.alpha / w, self.CHANNELS, dim=1)
        betas = torch.split(self.beta / w, self.CHANNELS, dim=1)
        score = 0.0
        for x, y, a, b in zip(self.stages(output), self.stages(target), alphas, betas):
            mx, my = x.mean((2, 3), keepdim=True), y.mean((2, 3), keepdim=True)
            vx, vy = ((x - mx) ** 2).mean((2, 3), keepdim=True), ((y - my) ** 2).mean((2, 3), keepdim=True)
            cov = (x * y).mean((2, 3), keepdim=True) - mx * my
            structure = (2 * mx * my + 1e-6) / (mx ** 2 + my ** 2 + 1e-6)
            texture = (2 * cov + 1e-6) / (vx + vy + 1e-6)
            score = score + (a * structure + b * texture).sum(1)
        return (1 - score).mean()


def peers(kornia_msssim: bool = False, msssim_window: int = 11) -> dict[str, tuple[object, list[torch.Tensor]]]:
    """name -> (loss callable f(output, target), tensors to exclude from the memory count);
    ``msssim_window`` < 11 only for the quick run's tiny images (MS-SSIM needs sides > 16 (window - 1))."""
    from pytorch_msssim import ms_ssim

    alex = LpipsAlexSized()
    nets = {OURS: PixelPerfectLoss(), "LPIPS-AlexNet-sized": alex, "LPIPS-VGG16-sized": LpipsVggSized(),
            "DISTS-sized": DistsSized(), "MS-SSIM (kornia)": kornia.losses.MS_SSIMLoss(alpha=1.0, compensation=1.0)}
    for net in nets.values():
        net.eval().requires_grad_(False)
    state = {name: [*n.parameters(), *n.buffers()] for name, n in nets.items()}
    out = {
        OURS: (nets[OURS], state[OURS]),
        "L1": (lambda o, t: (o - t).abs().mean(), []),
        "SSIM (kornia, 11x11)": (lambda o, t: 1 - kornia.metrics.ssim(o, t, 11).mean(), []),
        "MS-SSIM (pytorch-msssim)": (lambda o, t: 1 - ms_ssim(o, t, data_range=1.0, win_size=msssim_window), []),
        "LPIPS-AlexNet-sized": (lambda o, t: alex(t, o).mean(), state["LPIPS-AlexNet-sized"]),
        "LPIPS-VGG16-sized": (nets["LPIPS-VGG16-sized"], state["LPIPS-VGG16-sized"]),
        "DISTS-sized": (nets["DISTS-sized"], state["DISTS-sized"]),
    }
    if kornia_msssim:
        out["MS-SSIM (kornia)"] = (nets["MS-SSIM (kornia)"], state["MS-SSIM (kornia)"])
    return out


class Bench:
    """Measures loss callables, remembers each one's per-pixel cost to skip hopeless cases."""

    def __init__(self, repeats: int) -> None:
        self.repeats = repeats
        self.rate: dict[str, tuple[int, float]] = {}  # name -> (elements, fwd+bwd s per element)
        self.cache: dict[tuple[str, tuple[int, ...], bool], tuple[float, float, int] | None] = {}

    def estimate(self, name: str, shape: tuple[int, ...]) -> float:
        """Seconds of one fwd+bwd call, linear in elements from the largest case measured so far."""
        return self.rate.get(name, (0, 0.0))[1] * torch.Size(shape).numel()

    def measure(self, name: str, fn, exclude: list[torch.Tensor], shape: tuple[int, ...],
                forward: bool = True) -> tuple[float, float, int] | None:
        """(fwd s or nan, fwd+bwd s, saved-tensor bytes), or None when skipped as too slow."""
        key = (name, shape, forward)
        for k in (key, (name, shape, True)):  # a measurement with forward serves one without
            if k in self.cache:
                return self.cache[k]
        est = self.estimate(name, shape)
        if est > MAX_SECONDS:
            self.cache[key] = None
            return None
        step, fwd = steps(fn, shape)

        start = time.perf_counter()
        memory = peak_memory(step, exclude=exclude)  # also the warm-up of ``step``
        slow = max(est, time.perf_counter() - start) > SLOW_SECONDS
        repeats, warmup = (1, 0) if slow else (self.repeats, 1)
        both = time_call(step, repeats, warmup=0)
        fwd_s = time_call(fwd, repeats, warmup=warmup) if forward else float("nan")
        n = torch.Size(shape).numel()
        if n >= self.rate.get(name, (0, 0.0))[0]:
            self.rate[name] = (n, both / n)
        self.cache[key] = (fwd_s, both, memory)
        return self.cache[key]


def steps(fn, shape: tuple[int, ...]) -> tuple[Callable[[], torch.Tensor], Callable[[], None]]:
    """A forward + backward call of the loss ``fn`` on a fixed random pair of ``shape``, and a forward call."""
    g = torch.Generator().manual_seed(0)
    target = torch.rand(shape, generator=g)
    output = torch.rand(shape, generator=g).requires_grad_()

    def step() -> torch.Tensor:
        output.grad = None
        loss = fn(output, target)
        loss.backward()
        return loss.detach()

    def fwd() -> None:
        with torch.no_grad():
            fn(output, target)

    return step, fwd


def shape_table(bench: Bench, losses: dict, shape: tuple[int, ...]) -> list[str]:
    results = {name: bench.measure(name, fn, ex, shape) for name, (fn, ex) in losses.items()}
    # the calls under SLOW_SECONDS again, one of each per round, so that a slow spell of the machine hits all alike
    fast = [name for name, r in results.items() if r is not None and r[1] <= SLOW_SECONDS]
    if bench.repeats > 1 and len(fast) > 1:
        times = time_interleaved([steps(losses[name][0], shape)[0] for name in fast], INTERLEAVED_ROUNDS)
        for name, t in zip(fast, times):
            results[name] = bench.cache[(name, shape, True)] = (results[name][0], t, results[name][2])  # scaling too
    _, ours_t, ours_m = results[OURS]
    lines = [f"### Shape {shape}", "",
             "| loss | fwd s | fwd+bwd s | fwd+bwd vs ours | saved-tensor MiB | memory vs ours |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, r in results.items():
        if r is None:
            lines.append(f"| {name} | skipped (> {MAX_SECONDS:.0f} s) | | | | |")
            continue
        fwd_s, both, mem = r
        lines.append(f"| {name} | {fwd_s:.4f} | {both:.4f} | {both / ours_t:.2f}x | "
                     f"{mem / 2**20:.1f} | {mem / ours_m:.2f}x |")
    return lines + [""]


def scaling_table(bench: Bench, losses: dict, title: str, label: str,
                  shapes: list[tuple[int, ...]], values: list[int]) -> list[str]:
    lines = [f"### {title}", "", "Forward + backward seconds; per-pixel time and memory relative to "
             "the smallest case (1.00 = linear growth).", "",
             f"| loss | {label} | fwd+bwd s | per-pixel time | saved-tensor MiB | per-pixel memory |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, (fn, ex) in losses.items():
        base = None
        for value, shape in zip(values, shapes):
            r = bench.measure(name, fn, ex, shape, forward=False)
            if r is None:
                lines.append(f"| {name} | {value} | skipped (> {MAX_SECONDS:.0f} s) | | | |")
                continue
            px = torch.Size(shape).numel()
            base = base or (r[1] / px, r[2] / px)
            lines.append(f"| {name} | {value} | {r[1]:.4f} | {r[1] / px / base[0]:.2f} | "
                         f"{r[2] / 2**20:.1f} | {r[2] / px / base[1]:.2f} |")
    return lines + [""]


def estimate_full_run(bench: Bench, losses: dict) -> float:
    """Rough seconds for the full run, linear in pixels from the rates measured so far.

    Mirrors ``Bench.measure``: the memory call, the timed fwd+bwd calls and, in the shape
    tables, the forward calls (~0.6 of fwd+bwd: LPIPS-like losses run both images forward).
    """
    full = [(8, 3, 256, 256), (1, 3, 1024, 1024)]
    scaled = [(1, 3, s, s) for s in (256, 512, 2048)] + [(b, 3, 256, 256) for b in (2, 4, 8, 16)]
    total = 0.0
    for name in losses:
        plan = [(s, True) for s in full]
        plan += [(s, False) for s in scaled] if name in (OURS, "L1", "LPIPS-AlexNet-sized") else []
        for shape, forward in plan:
            est = bench.estimate(name, shape)
            if est <= MAX_SECONDS:
                n = 1 if est > SLOW_SECONDS else 3  # (n > 1): the forward warm-up
                total += est * (1 + n + (n + (n > 1)) * 0.6 * forward)
    return total


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny shapes, 1 repeat, print only")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: untouched)")
    parser.add_argument("--kornia-msssim", action="store_true",
                        help="also time kornia's full-resolution MS-SSIM (slow: minutes per call at 1024x1024)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        shapes, sizes, batches, repeats, base = [(2, 3, 64, 64)], [64, 128], [1, 2], 1, 64
    else:
        shapes, sizes, batches, repeats, base = ([(8, 3, 256, 256), (1, 3, 1024, 1024)],
                                                 [256, 512, 1024, 2048], [1, 2, 4, 8, 16], 3, 256)
    start = time.perf_counter()
    losses = peers(args.kornia_msssim, 3 if args.quick else 11)
    bench = Bench(repeats)
    md = ["Peers marked *-sized* are the published architectures (LPIPS-AlexNet, LPIPS-VGG16, DISTS) "
          "written here with **random weights**: timing and memory stand-ins only. PixelPerfectLoss "
          "uses its real packaged weights. MS-SSIM is pytorch-msssim's (5-scale dyadic pyramid, 11x11 "
          "window" + (", plus kornia's full-resolution variant" if args.kornia_msssim else "") + "). Gradients w.r.t. the output only, parameters frozen; median of "
          f"{repeats} ({repeats > 1 and f'1 for calls over {SLOW_SECONDS:.0f} s, ' or ''}after a warm-up)"
          + (f"; in the shape tables, the fwd+bwd of calls under {SLOW_SECONDS:.0f} s is the median of {INTERLEAVED_ROUNDS} "
             "rounds of one call of each loss in turn (their ratios to ours are the ones to read)" if repeats > 1 else "")
          + ". Memory: autograd saved-tensor bytes of "
          "forward + backward (see `benchmarks/common.py`). The machine is shared and noisy: compare "
          "ratios within this run, not absolute seconds across runs.", ""]
    for shape in shapes:
        md += shape_table(bench, losses, shape)
    scaled = {k: losses[k] for k in (OURS, "L1", "LPIPS-AlexNet-sized")}
    md += scaling_table(bench, scaled, "Scaling with image size (batch 1)", "size",
                        [(1, 3, s, s) for s in sizes], sizes)
    md += scaling_table(bench, scaled, f"Scaling with batch size (size {base})", "batch",
                        [(b, 3, base, base) for b in batches], batches)
    md.append(f"Total benchmark wall time: {time.perf_counter() - start:.0f} s.")
    text = "\n".join(md)
    print(text)
    if args.quick:
        print(f"\nEstimated full run (linear in pixels from these timings): "
              f"~{estimate_full_run(bench, losses) / 60:.1f} min")
    else:
        write_section("loss_speed", text, " ".join(["python -m benchmarks.loss_speed", *(argv or [])]))


if __name__ == "__main__":
    main(sys.argv[1:])
