import pytest
import torch

from pixelperfect_loss.data import RandomCrops, embedded_images


@pytest.fixture(scope="session")
def photos() -> torch.Tensor:
    """Four 64x64 crops of the embedded photos (float32, [0, 1])."""
    return RandomCrops(embedded_images(), size=64, seed=3).batch(0, 4)


