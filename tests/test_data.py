"""Image sources: embedded photos, file reading, random crops."""

import struct
import zlib

import numpy as np
import pytest
import torch

from pixelperfect_loss.data import RandomCrops, embedded_image_paths, embedded_images, image_paths, read_image


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


def _chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png(path, pixels, depth, ctype, extra=b"", interlace=0):
    """Write ``pixels`` (H, W, C) as a PNG by hand, every row Sub-filtered (which depends on the
    bytes per pixel); 1/2/4-bit pixels are packed leftmost-first."""
    h, w, c = pixels.shape
    if depth < 8:
        bits = (pixels[..., :1] >> np.arange(depth - 1, -1, -1)) & 1
        raw = np.packbits(bits.reshape(h, -1).astype(np.uint8), axis=1)
    else:
        raw = np.ascontiguousarray(pixels, ">u2" if depth == 16 else np.uint8).reshape(h, -1).view(np.uint8)
    bpp = max(1, c * depth // 8)
    sub = raw.copy()
    sub[:, bpp:] -= raw[:, :-bpp]
    rows = np.hstack([np.ones((h, 1), np.uint8), sub]).tobytes()

    ihdr = struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, interlace)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + extra + _chunk(b"IDAT", zlib.compress(rows))
                     + _chunk(b"IEND", b""))
    return path


def _rgb(arr, top):
    """The tensor read_image should give for (H, W, C) integer pixels with maximum ``top``."""
    x = torch.from_numpy(arr.astype(np.float32) / top).permute(2, 0, 1)
    return x[:1].expand(3, -1, -1) if x.shape[0] < 3 else x[:3]  # gray (+ alpha) or RGB (+ alpha)


@pytest.mark.parametrize("depth,ctype,channels", [(8, 0, 1), (16, 0, 1), (8, 2, 3), (16, 2, 3), (8, 6, 4),
                                                  (16, 6, 4), (8, 4, 2), (16, 4, 2), (1, 0, 1), (2, 0, 1),
                                                  (4, 0, 1)])
def test_read_image_gray_rgb_alpha_and_low_bit_pngs(tmp_path, depth, ctype, channels):
    top = 2**depth - 1
    pixels = np.random.default_rng(depth + ctype).integers(0, top + 1, (5, 13, channels))
    x = read_image(_png(tmp_path / "a.png", pixels, depth, ctype))
    assert x.shape == (3, 5, 13) and torch.allclose(x, _rgb(pixels, top), atol=1e-6)


@pytest.mark.parametrize("depth", [1, 2, 4, 8])
def test_read_image_expands_palette_pngs(tmp_path, depth):
    rng = np.random.default_rng(depth)
    palette = rng.integers(0, 256, (2**depth, 3)).astype(np.uint8)
    index = rng.integers(0, 2**depth, (6, 11, 1))
    extra = _chunk(b"PLTE", palette.tobytes()) + _chunk(b"tRNS", bytes(len(palette)))  # transparency is dropped
    x = read_image(_png(tmp_path / "p.png", index, depth, 3, extra))
    assert torch.equal(x, _rgb(palette[index[..., 0]], 255))


def test_read_image_palette_png_as_in_the_report(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    im = Image.open(embedded_image_paths()[4]).convert("RGB").quantize(256).convert("RGB")
    im.save(tmp_path / "a.png")
    im.quantize(256).save(tmp_path / "b.png")
    assert torch.equal(read_image(tmp_path / "a.png"), read_image(tmp_path / "b.png"))


def test_read_image_refuses_what_it_cannot_decode_naming_file_and_formats(tmp_path):
    pixels = np.zeros((4, 4, 1), np.int64)
    with pytest.raises(ValueError, match=r"i\.png .*interlaced 2-bit.*expected a PNG \(gray"):
        read_image(_png(tmp_path / "i.png", pixels, 2, 0, interlace=1))
    with pytest.raises(ValueError, match=r"noplte\.png .*PLTE chunk has 0 colours"):
        read_image(_png(tmp_path / "noplte.png", pixels + 1, 8, 3))
    with pytest.raises(ValueError, match=r"short\.png .*palette index 3 .* 2 colours"):
        read_image(_png(tmp_path / "short.png", pixels + 3, 2, 3, _chunk(b"PLTE", bytes(6))))
    Image = pytest.importorskip("PIL.Image")
    Image.new("CMYK", (8, 8)).save(tmp_path / "cmyk.jpg")
    with pytest.raises(ValueError, match=r"cmyk\.jpg as an image \(.*4 channels.*\); .*not CMYK"):
        read_image(tmp_path / "cmyk.jpg")


def test_image_paths_lists_only_files(tmp_path):
    (tmp_path / "folder.png").mkdir()
    with pytest.raises(ValueError, match="no PNG"):
        image_paths(tmp_path)
    (tmp_path / "b.jpg").write_bytes(b"")
    assert image_paths(tmp_path) == [tmp_path / "b.jpg"]


def test_random_crops_name_the_too_small_image(tmp_path):
    _png(tmp_path / "big.png", np.zeros((40, 40, 3), np.int64), 8, 2)
    _png(tmp_path / "tiny.png", np.zeros((20, 30, 3), np.int64), 8, 2)
    with pytest.raises(ValueError, match=r"at least 32x32, but .*tiny\.png is 30x20"):
        RandomCrops(tmp_path, size=32)
    with pytest.raises(ValueError, match=r"at least 32x32, but image 1 is 5x4"):
        RandomCrops([torch.zeros(3, 40, 40), torch.zeros(3, 4, 5)], size=32)
    assert RandomCrops(tmp_path, size=20)[0].shape == (3, 20, 20)
