"""The same properties on every device this machine has (the CPU, and CUDA when there is a GPU)."""

import pytest
import torch

from pixelperfect_loss import PixelPerfect, PixelPerfectLoss
from pixelperfect_loss.engine import make_ranked_sets, make_triplets
from pixelperfect_loss.nets import DistortionPredictor

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
DTYPES = [torch.float32, torch.float64]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("device", DEVICES)
def test_predictor_exact_antisymmetry_on_device(device, dtype, photos):
    net = DistortionPredictor().to(device, dtype).eval()
    a, b = photos[:2].to(device, dtype), photos[2:].to(device, dtype)
    with torch.no_grad():
        ab, ba, aa = net(a, b), net(b, a), net(a, a)
    assert ab.device.type == device and ab.dtype == dtype
    assert torch.equal(ab, -ba) and ab.abs().max() > 0
    assert aa.abs().max() == 0


@pytest.mark.parametrize("device", DEVICES)
def test_loss_and_metric_follow_the_device(device, photos):
    loss_fn = PixelPerfectLoss(channels=["blur", "noise"]).to(device)
    ref = photos.to(device)
    out = (ref + 0.05 * torch.randn_like(ref)).clamp(0, 1).requires_grad_(True)
    loss = loss_fn(out, ref)
    loss.backward()
    assert loss.device.type == device and torch.isfinite(out.grad).all() and out.grad.abs().sum() > 0
    assert loss_fn(ref, ref).item() == 0.0
    pp = PixelPerfect().to(device)
    score = pp.score(ref, out.detach())
    assert score.device.type == device and (score < 0).all()
    assert (pp.score(ref, ref) == 0).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_engine_on_the_gpu_makes_the_cpu_triplets_and_sets(photos):
    """Random draws come from the CPU generator, so a seed gives the same data on every device."""
    cpu = make_triplets(photos, torch.Generator().manual_seed(3))
    gpu = make_triplets(photos.cuda(), torch.Generator().manual_seed(3))
    for a, b in zip(cpu, gpu):
        assert b.is_cuda and torch.allclose(a, b.cpu(), atol=1e-4)
    cpu = make_ranked_sets(photos, 3, torch.Generator().manual_seed(4), p_other=0.5)
    gpu = make_ranked_sets(photos.cuda(), 3, torch.Generator().manual_seed(4), p_other=0.5)
    assert torch.equal(cpu.other, gpu.other.cpu()) and bool(cpu.other.any()) and not bool(cpu.other.all())
    assert torch.allclose(cpu.images, gpu.images.cpu(), atol=1e-4)
    x = photos.repeat(3, 1, 1, 1)  # 12 sets, all made by the operators outside the channels
    cpu = make_ranked_sets(x, 3, torch.Generator().manual_seed(7), p_other=1.0)
    gpu = make_ranked_sets(x.cuda(), 3, torch.Generator().manual_seed(7), p_other=1.0)
    assert torch.allclose(cpu.images, gpu.images.cpu(), atol=1e-4)
