"""Image sources: reading files, the embedded default images, and random training crops."""

from __future__ import annotations

import math
import struct
import zlib
from importlib import resources
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
SUPPORTED_FORMATS = ("a PNG (gray, gray+alpha, palette, RGB or RGBA; 8 or 16 bits, or 1/2/4 bits if not "
                     "interlaced), a JPEG (gray or RGB, not CMYK) or a TIFF (gray or RGB)")


def read_image(path: str | Path) -> Tensor:
    """Read a PNG, JPEG or TIFF file as a float RGB tensor (3, H, W) in [0, 1].

    Gray images are replicated to RGB, palette PNGs are expanded through their palette; an alpha
    channel (or palette transparency) is dropped.

    Example:
        >>> read_image(embedded_image_paths()[0]).shape
        torch.Size([3, 256, 384])
    """
    import kornia_rs

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: no such image file: {path}")
    try:
        arr = _read_special_png(path)
        if arr is None:
            arr = np.asarray(kornia_rs.io.read_image(str(path)))
    except Exception as exc:  # kornia_rs raises plain exceptions for unreadable files
        reason = " ".join(str(exc).split())
        raise ValueError(f"path: cannot read {path} as an image ({reason}); expected {SUPPORTED_FORMATS}") from None
    scale = 65535.0 if arr.dtype == np.uint16 else (1.0 if arr.dtype.kind == "f" else 255.0)
    x = torch.from_numpy(arr.astype(np.float32) / scale)
    if x.ndim == 2:
        x = x[:, :, None]
    x = x.permute(2, 0, 1)
    if x.shape[0] == 1:
        x = x.expand(3, -1, -1)
    return x[:3].contiguous().clamp(0, 1)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _read_special_png(path: Path) -> np.ndarray | None:
    """Decode the PNG kinds that kornia_rs refuses or misreads (gray+alpha, palette, 1/2/4-bit gray)
    as an (H, W, C) array; None for any other file.

    kornia_rs still does the decompression and unfiltering: the pixel data is relabelled as a kind
    it reads with the same bytes per pixel (8-bit gray+alpha as 16-bit gray, 16-bit gray+alpha as
    8-bit RGBA, palette and low-bit gray rows as 8-bit gray rows of packed bytes), then converted.
    """
    import kornia_rs

    with open(path, "rb") as f:
        head = f.read(33)
    if len(head) < 33 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", head[16:29])
    if (ctype, depth) not in {(4, 8), (4, 16), (3, 1), (3, 2), (3, 4), (3, 8), (0, 1), (0, 2), (0, 4)}:
        return None
    if depth < 8 and interlace:
        raise ValueError(f"interlaced {depth}-bit PNG")
    data, pos, idat, plte = path.read_bytes(), 8, [], b""
    while pos + 8 <= len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat.append(data[pos + 8:pos + 8 + n])
        elif kind == b"PLTE":
            plte = data[pos + 8:pos + 8 + n]
        pos += 12 + n
    if ctype == 4:
        width, depth_as, ctype_as = (w, 16, 0) if depth == 8 else (w, 8, 6)
    else:
        width, depth_as, ctype_as = -(-w * depth // 8), 8, 0
    png = head[:8] + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, h, depth_as, ctype_as, 0, 0, interlace))
    png += _png_chunk(b"IDAT", b"".join(idat)) + _png_chunk(b"IEND", b"")
    if ctype == 4 and depth == 8:  # read as 16-bit gray: the gray byte is the high byte
        return (np.asarray(kornia_rs.io.decode_image_png_u16(png, (h, width), "mono")) >> 8).astype(np.uint8)
    if ctype == 4:  # read as 8-bit RGBA: the 16-bit gray is the first two bytes
        rgba = np.asarray(kornia_rs.io.decode_image_png_u8(png, (h, width), "rgba")).astype(np.uint16)
        return rgba[..., :1] << 8 | rgba[..., 1:2]
    values = np.asarray(kornia_rs.io.decode_image_png_u8(png, (h, width), "mono"))[..., 0]
    if depth < 8:  # unpack the pixels, leftmost in the high bits of each byte
        bits = np.unpackbits(values, axis=1).reshape(h, -1, depth)
        values = (bits @ (1 << np.arange(depth - 1, -1, -1)))[:, :w].astype(np.uint8)
    if ctype == 0:
        return values[..., None] * np.uint8(255 // (2**depth - 1))
    palette = np.frombuffer(plte[:len(plte) // 3 * 3], np.uint8).reshape(-1, 3)
    if values.max() >= len(palette):
        raise ValueError(f"palette index {values.max()} but the PLTE chunk has {len(palette)} colours")
    return palette[values]


def embedded_image_paths() -> list[Path]:
    """Paths of the photos shipped inside the package (see ``assets/README.md``).

    Example:
        >>> len(embedded_image_paths()) >= 3
        True
    """
    root = resources.files("pixelperfect_loss") / "assets"
    return sorted(Path(str(p)) for p in root.iterdir() if p.name.endswith(".png"))


def embedded_images() -> list[Tensor]:
    """The embedded photos as float tensors (3, H, W) in [0, 1].

    Example:
        >>> embedded_images()[0].dtype
        torch.float32
    """
    return [read_image(p) for p in embedded_image_paths()]


def image_paths(folder: str | Path) -> list[Path]:
    """Image files (PNG, JPEG, TIFF; regular files, not folders) directly inside ``folder``, sorted by name.

    Example:
        >>> image_paths(embedded_image_paths()[0].parent)[0].suffix
        '.png'
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"images: no such folder: {folder}")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        raise ValueError(f"images: no PNG/JPEG/TIFF files in {folder}")
    return paths


class RandomCrops(torch.utils.data.Dataset):
    """Random square crops of a set of images, with random down-scaling and flips.

    Item ``i`` is a deterministic function of ``(seed, i)``, so that workers and distributed
    ranks reproduce and never share samples when they read different indices. Images are held
    in memory; crops are down-scaled by a factor in [1, ``max_downscale``] (antialiased), never
    up-scaled, so that the clean images stay sharp.

    Example:
        >>> ds = RandomCrops(embedded_images(), size=64, length=10)
        >>> ds[3].shape, bool((ds[3] == ds[3]).all())
        (torch.Size([3, 64, 64]), True)
    """

    def __init__(self, images: list[Tensor] | str | Path | None = None, size: int = 128,
                 length: int = 10**6, seed: int = 0, max_downscale: float = 2.0) -> None:
        names = None
        if images is None:
            names = embedded_image_paths()
        elif isinstance(images, (str, Path)):
            names = image_paths(images)
        if names is not None:
            images = [read_image(p) for p in names]
        if not images:
            raise ValueError("images: expected at least one image")
        if not isinstance(size, int) or size < 8:
            raise ValueError(f"size: expected an integer >= 8, got {size!r}")
        for i, im in enumerate(images):
            if min(im.shape[-2:]) < size:
                name = names[i] if names is not None else f"image {i}"
                raise ValueError(f"images: every image must be at least {size}x{size}, but {name} is "
                                 f"{im.shape[-1]}x{im.shape[-2]}")
        self.images, self.size, self.length, self.seed = list(images), size, length, seed
        self.max_downscale = max_downscale

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + int(index))
        u = torch.rand(6, generator=g, dtype=torch.float64).tolist()
        im = self.images[int(u[0] * len(self.images))]
        h, w = im.shape[-2:]
        fmax = min(self.max_downscale, h / self.size, w / self.size)
        f = math.exp(u[1] * math.log(max(fmax, 1.0)))
        side = min(h, w, max(self.size, round(self.size * f)))
        top, left = int(u[2] * (h - side + 1)), int(u[3] * (w - side + 1))
        crop = im[:, top:top + side, left:left + side]
        if side != self.size:
            crop = F.interpolate(crop[None], size=(self.size, self.size), mode="bilinear",
                                 antialias=True, align_corners=False)[0].clamp(0, 1)
        if u[4] < 0.5:
            crop = crop.flip(-1)
        if u[5] < 0.5:
            crop = crop.flip(-2)
        return crop.contiguous()

    def batch(self, start: int, n: int) -> Tensor:
        """Items ``start .. start + n - 1`` stacked into (n, 3, size, size)."""
        return torch.stack([self[start + i] for i in range(n)])
