"""Image sources: reading files, the embedded default images, and random training crops."""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


def read_image(path: str | Path) -> Tensor:
    """Read a PNG, JPEG or TIFF file as a float RGB tensor (3, H, W) in [0, 1].

    Gray images are replicated to RGB; an alpha channel is dropped.

    Example:
        >>> read_image(embedded_image_paths()[0]).shape
        torch.Size([3, 256, 384])
    """
    import kornia_rs

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: no such image file: {path}")
    try:
        arr = np.asarray(kornia_rs.io.read_image(str(path)))
    except Exception as exc:  # kornia_rs raises plain exceptions for unreadable files
        raise ValueError(f"path: cannot read {path} as an image ({exc})") from None
    scale = 65535.0 if arr.dtype == np.uint16 else (1.0 if arr.dtype.kind == "f" else 255.0)
    x = torch.from_numpy(arr.astype(np.float32) / scale)
    if x.ndim == 2:
        x = x[:, :, None]
    x = x.permute(2, 0, 1)
    if x.shape[0] == 1:
        x = x.expand(3, -1, -1)
    return x[:3].contiguous().clamp(0, 1)


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
    """Image files (PNG, JPEG, TIFF) directly inside ``folder``, sorted by name.

    Example:
        >>> image_paths(embedded_image_paths()[0].parent)[0].suffix
        '.png'
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"images: no such folder: {folder}")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
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
        if images is None:
            images = embedded_images()
        elif isinstance(images, (str, Path)):
            images = [read_image(p) for p in image_paths(images)]
        if not images:
            raise ValueError("images: expected at least one image")
        if not isinstance(size, int) or size < 8:
            raise ValueError(f"size: expected an integer >= 8, got {size!r}")
        small = [tuple(im.shape[-2:]) for im in images if min(im.shape[-2:]) < size]
        if small:
            raise ValueError(f"images: every image must be at least {size}x{size}, got {small[0]}")
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
