"""Minimal training loop with PixelPerfectLoss: a small conv layer learns to undo a 3x3 box blur on
crops of the embedded photos, with L1 + 0.03 * PixelPerfectLoss(channels=["blur", "noise"], direction="more")
(the weight and direction the README recommends for a pair of channels that pull against each other).

    python examples/minimal_loop.py          # a few seconds on CPU
"""

import argparse

import torch
import torch.nn.functional as F

from pixelperfect_loss import PixelPerfectLoss
from pixelperfect_loss.data import RandomCrops

ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
ap.add_argument("--steps", type=int, default=20, help="training steps (default 20)")
steps = ap.parse_args().steps
loss_fn = PixelPerfectLoss(channels=["blur", "noise"], direction="more")  # penalise added blur and noise only
net = torch.nn.Conv2d(3, 3, 5, padding=2)                 # the model being trained: predicts a residual
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
crops = RandomCrops(size=64, seed=0)                      # random crops of the embedded photos
box = torch.full((3, 1, 3, 3), 1 / 9)                     # the degradation to undo

for step in range(steps):
    target = crops.batch(step * 4, 4)                                          # (4, 3, 64, 64) in [0, 1]
    blurred = F.conv2d(F.pad(target, (1, 1, 1, 1), mode="reflect"), box, groups=3)
    output = (blurred + net(blurred)).clamp(0, 1)                              # the loss wants [0, 1]
    loss = F.l1_loss(output, target) + 0.03 * loss_fn(output, target)
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step % 5 == 0 or step == steps - 1:
        print(f"step {step:2d}  loss {loss.item():.4f}")
