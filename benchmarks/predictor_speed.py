"""Forward + backward cost of the distortion predictor against an LPIPS-AlexNet-sized network.

Measures, for a batch of (reference, image) pairs with gradients w.r.t. ``image`` only and all
network parameters frozen: parameter count, median forward + backward seconds, and autograd
saved-tensor memory (see ``benchmarks.common``). A plain L1 loss is included for reference.

The comparison network is written here from LPIPS's published architecture (random weights):
AlexNet ``features``, the 5 ReLU outputs of both images unit-normalised over channels, squared
difference, 1x1 "lin" heads without bias, spatial mean, summed over layers.

Targets (from the issue): predictor time <= 0.5x and saved-tensor memory <= 1.0x LPIPS-AlexNet.

Run from the repository root:
    python -m benchmarks.predictor_speed          # (8, 3, 256, 256), writes benchmarks/RESULTS.md
    python -m benchmarks.predictor_speed --quick  # (2, 3, 64, 64), 1 repeat, prints only

``--threads N`` sets ``torch.set_num_threads(N)``; by default the thread count is left alone.
With another CPU-heavy process running, use ``--threads 1``: oversubscribed intra-op threads
can make small convolutions tens of times slower.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable

import torch
from torch import nn

from benchmarks.common import peak_memory, time_interleaved, write_section
from pixelperfect_loss.nets import DistortionPredictor

TIME_TARGET, MEMORY_TARGET = 0.5, 1.0
NOTE = 'LPIPS-AlexNet-sized: AlexNet\'s convolutional features and LPIPS\'s linear heads, written from the published architecture with random weights (timing only). "As in the loss": the predictor\'s native 1/4-resolution maps, which is what PixelPerfectLoss averages; "full-res maps": upsampled to the input size, as `distortion_maps` returns them. Memory: bytes of the tensors autograd saves for backward, those kept for recomputation in backward (ours, in eval mode, recomputes its fixed features and pair head: activation checkpointing), and the output (see `benchmarks/common.py`).'


class LpipsAlexSized(nn.Module):
    """LPIPS (AlexNet variant) architecture with random weights, for cost comparisons only."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(),
        )
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in (64, 192, 384, 256, 256))

    def taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for layer in self.features:
            x = layer(x)
            if isinstance(layer, nn.ReLU):
                out.append(x / torch.sqrt((x * x).sum(1, keepdim=True) + 1e-10))
        return out

    def forward(self, reference: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        pairs = zip(self.taps(reference), self.taps(image))
        return sum(lin((a - b) ** 2).mean((2, 3)) for lin, (a, b) in zip(self.lins, pairs))


class NativeMaps(nn.Module):
    """Our predictor as the loss runs it: maps at its native 1/4 resolution (no upsampling)."""

    def __init__(self, net: DistortionPredictor) -> None:
        super().__init__()
        self.net = net

    def forward(self, reference: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return self.net(reference, image, lowres=True)


class L1(nn.Module):
    def forward(self, reference: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return (image - reference).abs()


def prepare(net: nn.Module, shape: tuple[int, ...]) -> tuple[int, Callable[[], torch.Tensor], int]:
    """(parameters, a fwd+bwd step of ``net(reference, image)``, saved-tensor bytes of that step)."""
    net.requires_grad_(False)
    g = torch.Generator().manual_seed(0)
    reference = torch.rand(shape, generator=g)
    image = torch.rand(shape, generator=g).requires_grad_()

    def step() -> torch.Tensor:
        image.grad = None
        out = net(reference, image)
        out.abs().mean().backward()
        return out

    params = sum(p.numel() for p in net.parameters())
    return params, step, peak_memory(step, exclude=list(net.parameters()))  # also the warm-up


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny batch, 1 repeat, print only")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: untouched)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    shape, repeats = ((2, 3, 64, 64), 1) if args.quick else ((8, 3, 256, 256), 9)

    ours = DistortionPredictor()
    nets = {"DistortionPredictor (ours), as in the loss": NativeMaps(ours),
            "DistortionPredictor (ours), full-res maps": ours,
            "LPIPS-AlexNet-sized": LpipsAlexSized(), "L1": L1()}
    prepared = {name: prepare(net.eval(), shape) for name, net in nets.items()}
    # interleaved: one call of each network per round, so that a slow spell of the machine hits all alike
    seconds = time_interleaved([step for _, step, _ in prepared.values()], repeats)
    results = {name: (params, t, memory) for (name, (params, _, memory)), t in zip(prepared.items(), seconds)}
    _, base_t, base_m = results["LPIPS-AlexNet-sized"]

    lines = [f"Batch {tuple(shape)}, forward + backward w.r.t. the image, frozen parameters, "
             f"median of {repeats} rounds of one call of each network in turn, after 1 warm-up.", "", NOTE, "",
             "| network | parameters | fwd+bwd s | time ratio | saved-tensor MiB | memory ratio |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, (params, seconds, memory) in results.items():
        lines.append(f"| {name} | {params:,} | {seconds:.4f} | {seconds / base_t:.2f}x | "
                     f"{memory / 2**20:.1f} | {memory / base_m:.2f}x |")
    lines.append("")
    for name in ("DistortionPredictor (ours), as in the loss", "DistortionPredictor (ours), full-res maps"):
        _, ours_t, ours_m = results[name]
        time_ok, mem_ok = ours_t / base_t <= TIME_TARGET, ours_m / base_m <= MEMORY_TARGET
        lines += [f"- {name[len('DistortionPredictor (ours), '):]}: time (target <= {TIME_TARGET}x LPIPS-AlexNet) "
                  f"{ours_t / base_t:.2f}x, **{'PASS' if time_ok else 'FAIL'}**; memory (target <= {MEMORY_TARGET}x) "
                  f"{ours_m / base_m:.2f}x, **{'PASS' if mem_ok else 'FAIL'}**"]
    table = "\n".join(lines)
    print(table)
    if not args.quick:
        write_section("predictor_speed", table,
                      " ".join(["python -m benchmarks.predictor_speed", *(argv or [])]))


if __name__ == "__main__":
    main(sys.argv[1:])
