"""Image sources: embedded photos, file reading, random crops."""

import pytest
import torch

from pixelperfect_loss.data import RandomCrops, embedded_images, image_paths, read_image


def test_embedded_images_are_rgb_in_range():
    ims = embedded_images()
    assert len(ims) >= 3
    for im in ims:
        assert im.shape[0] == 3 and min(im.shape[1:]) >= 256
        assert im.dtype == torch.float32 and 0 <= im.min() and im.max() <= 1


def test_random_crops_deterministic_flipped_and_rescaled():
    ds = RandomCrops(embedded_images(), size=96, seed=1)
    a, b = ds.batch(0, 6), ds.batch(0, 6)
    assert a.shape == (6, 3, 96, 96) and torch.equal(a, b)
    assert not torch.equal(ds[0], RandomCrops(embedded_images(), size=96, seed=2)[0])


def test_random_crops_errors(tmp_path):
    with pytest.raises(ValueError, match="at least 512x512"):
        RandomCrops(embedded_images(), size=512)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        RandomCrops(tmp_path / "missing")
    with pytest.raises(ValueError, match="no PNG"):
        image_paths(tmp_path)


def test_read_image_errors(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(ValueError, match="cannot read"):
        read_image(bad)
    with pytest.raises(FileNotFoundError):
        read_image(tmp_path / "none.png")
