"""Distortions made by OpenCV: a third independent implementation beside Pillow and numpy.

OpenCV's filters, resamplers, encoders and colour spaces are its own code (its JPEG goes through
its bundled libjpeg-turbo build, its colour shifts here are in CIE Lab, which neither the engine
nor Pillow uses), so agreement with them is evidence that the networks learned the distortions,
not the engine's operators. Every function maps a PIL RGB image to a PIL RGB image.

Example:
    >>> from PIL import Image
    >>> im = Image.new("RGB", (32, 32), (120, 90, 60))
    >>> lab_shift(b=10)(im).getpixel((0, 0))[2] < 60  # more yellow: less blue
    True
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

cv2.setNumThreads(1)  # deterministic and polite beside torch's threads


def _np(im: Image.Image) -> np.ndarray:
    return np.asarray(im.convert("RGB"))


def _pil(a: np.ndarray) -> Image.Image:
    return Image.fromarray(a)


def gaussian_blur(sigma: float):
    return lambda im: _pil(cv2.GaussianBlur(_np(im), (0, 0), sigma))


def median_blur(k: int):
    return lambda im: _pil(cv2.medianBlur(_np(im), k))


def area_down_cubic_up(factor: float):
    """INTER_AREA down-scaling by ``factor``, INTER_CUBIC (a = -0.75, unlike Pillow's -0.5) back up."""
    def f(im: Image.Image) -> Image.Image:
        a = _np(im)
        h, w = a.shape[:2]
        small = cv2.resize(a, (max(1, round(w / factor)), max(1, round(h / factor))), interpolation=cv2.INTER_AREA)
        return _pil(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC))
    return f


def sharpen(amount: float, sigma: float = 1.5):
    """Unsharp masking with ``addWeighted``: (1 + amount) x - amount gaussian(x), saturated to uint8."""
    def f(im: Image.Image) -> Image.Image:
        a = _np(im)
        return _pil(cv2.addWeighted(a, 1 + amount, cv2.GaussianBlur(a, (0, 0), sigma), -amount, 0))
    return f


def randn_noise(sigma: float, seed: int):
    """Gaussian noise of ``sigma`` (on [0, 1]) from OpenCV's own generator (``cv2.randn``)."""
    def f(im: Image.Image) -> Image.Image:
        a = _np(im).astype(np.float32)
        n = np.zeros((a.size, 1), np.float32)  # one channel: a scalar sigma on a 3-channel Mat only reaches channel 0
        cv2.setRNGSeed(seed)
        cv2.randn(n, 0.0, 255.0 * sigma)
        return _pil(np.clip(a + n.reshape(a.shape) + 0.5, 0, 255).astype(np.uint8))
    return f


def nlmeans_denoised(sigma: float, seed: int):
    """``cv2.fastNlMeansDenoisingColored`` applied to the image with ``randn_noise(sigma)`` added."""
    noisy = randn_noise(sigma, seed)
    h = 255.0 * sigma
    # OpenCV's colour images are BGR: the denoiser's own colour conversion expects that order
    return lambda im: _pil(cv2.fastNlMeansDenoisingColored(np.ascontiguousarray(_np(noisy(im))[..., ::-1]),
                                                           None, h, h, 7, 21)[..., ::-1].copy())


def _encoded(ext: str, flag: int, name: str):
    """A function of the quality that round-trips images through OpenCV's ``ext`` encoder."""
    def at(quality: int):
        def f(im: Image.Image) -> Image.Image:
            ok, buf = cv2.imencode(ext, _np(im)[..., ::-1], [flag, quality])
            if not ok:
                raise RuntimeError(f"OpenCV could not encode a {name}")
            return _pil(cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].copy())
        return f
    return at


jpeg = _encoded(".jpg", cv2.IMWRITE_JPEG_QUALITY, "JPEG")
webp = _encoded(".webp", cv2.IMWRITE_WEBP_QUALITY, "WebP")


def scale_offset(alpha: float, beta: float):
    """``cv2.convertScaleAbs``: saturate(alpha x + beta) on the 0..255 scale."""
    return lambda im: _pil(cv2.convertScaleAbs(_np(im), alpha=alpha, beta=beta))


def hsv_saturation(factor: float):
    """The S channel of OpenCV's 8-bit HSV scaled by ``factor``."""
    def f(im: Image.Image) -> Image.Image:
        hsv = cv2.cvtColor(_np(im), cv2.COLOR_RGB2HSV).astype(np.float32)
        hsv[..., 1] = np.clip(hsv[..., 1] * factor, 0, 255)
        return _pil(cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB))
    return f


def lab_shift(a: float = 0.0, b: float = 0.0):
    """Shift CIE Lab a* (+: magenta, -: green) and b* (+: yellow, -: blue), L* kept (8-bit Lab)."""
    def f(im: Image.Image) -> Image.Image:
        lab = cv2.cvtColor(_np(im), cv2.COLOR_RGB2LAB).astype(np.float32)
        lab[..., 1] += a
        lab[..., 2] += b
        return _pil(cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB))
    return f
