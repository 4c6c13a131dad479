"""Accuracy of the distortion predictor on photos it was never trained on.

Run from the repository root (``--data`` is the shared evaluation folder; never trained on)::

    python -m benchmarks.predictor_accuracy --data ../shared/data/cbsd68 [--weights FILE] [--quick]

1. Engine triplets (fixed evaluation seed 2024, 256x256 centre crops): per-channel mean absolute
   error, sign accuracy where |label| > 0.2, and the cross-talk matrix: mean |map_j| when only
   channel i was applied (whole-image mask, strength uniform in [0.3, 1]), divided by the
   diagonal entry of row i.
2. Distortions made by independent code, not the engine (Pillow's filters, enhancers, colour
   matrix and JPEG encoder; numpy noise; OpenCV's filters, resamplers, noise, non-local-means
   denoiser, JPEG encoder, HSV and Lab colour spaces, :mod:`benchmarks.opencv_cases`): which
   channel has the largest |mean map| and its sign.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageEnhance, ImageFilter

from pixelperfect_loss.channels import CHANNELS, INDEX
from pixelperfect_loss.data import image_paths, read_image
from pixelperfect_loss.engine import make_triplets
from pixelperfect_loss.engine.recipes import OPERATORS, Recipe, apply_recipe
from pixelperfect_loss.functional import distortion_maps
from pixelperfect_loss.nets.predictor import H16_BOUND
from pixelperfect_loss.train.predictor import LABELLED
from pixelperfect_loss.weights import load_predictor

from . import opencv_cases as cv
from .common import weights_label, write_weights_section

SEED = 2024
CROP = 256


def centre_crops(folder: str, n: int | None) -> tuple[torch.Tensor, list[str]]:
    """CROP x CROP centre crops of the first ``n`` photos, and the names of those skipped as smaller."""
    out, small = [], []
    for p in image_paths(folder)[:n]:
        x = read_image(p)
        h, w = x.shape[-2:]
        if min(h, w) < CROP:
            small.append(p.name)
            continue
        t, l = (h - CROP) // 2, (w - CROP) // 2
        out.append(x[:, t:t + CROP, l:l + CROP])
    if not out:
        raise ValueError(f"--data: no photo in {folder} is at least {CROP}x{CROP}")
    return torch.stack(out), small


def predict(net, ref: torch.Tensor, img: torch.Tensor, batch: int = 8) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([distortion_maps(ref[i:i + batch], img[i:i + batch], net) for i in range(0, len(ref), batch)])


class UnitWatch:
    """Forward hooks that find dead units of the predictor's convolutional layers.

    Two ways a unit dies in training, both leaving it without gradient for good: a 1/16 pair
    feature pushed past the eval-mode bound (:data:`H16_BOUND`; the bound once applied in training
    too, weights/README.md "Dead units"), and a SiLU driven so far negative that its output is 0
    on every cell (``silent``: |value| < 1e-3 everywhere, where SiLU's slope is below 1e-3 too).
    """

    SILENT = 1e-3

    def __init__(self, net: torch.nn.Module) -> None:
        self.h16_max, self.h16_past = 0.0, torch.zeros(0)
        self.h16_values, self.h16_over = 0, 0  # all 1/16 feature values seen, and those past the bound
        self.peak: dict[str, torch.Tensor] = {}
        self.hooks = [net.fuse16.register_forward_hook(self._h16)]
        for name, m in net.named_modules():
            if isinstance(m, torch.nn.SiLU):
                self.hooks.append(m.register_forward_hook(lambda _m, _i, out, name=name: self._silu(name, out)))

    def _h16(self, module, inputs, out: torch.Tensor) -> None:
        mag = out.abs()
        self.h16_max = max(self.h16_max, mag.max().item())
        over = mag > H16_BOUND
        self.h16_values += out.numel()
        self.h16_over += int(over.sum())
        past = over.double().sum((0, 2, 3)) / (out.shape[0] * out.shape[2] * out.shape[3])
        self.h16_past = past if not len(self.h16_past) else torch.maximum(self.h16_past, past)

    def _silu(self, name: str, out: torch.Tensor) -> None:
        peak = out.detach().abs().amax((0, 2, 3))
        self.peak[name] = torch.maximum(self.peak[name], peak) if name in self.peak else peak

    def remove(self) -> None:
        for h in self.hooks:
            h.remove()

    def summary(self) -> str:
        silent = {name: int((p < self.SILENT).sum()) for name, p in self.peak.items()}
        total = sum(len(p) for p in self.peak.values())
        where = ", ".join(f"{n} {k} of {len(self.peak[n])}" for n, k in silent.items() if k) or "none"
        return (f"Dead units (a healthy network has none). 1/16 pair features (before the eval-mode bound of "
                f"{H16_BOUND:g}): largest |value| {self.h16_max:.1f}, {self.h16_over} of {self.h16_values} values past "
                f"it; units past the bound on more than half of the "
                f"cells in some batch: {int((self.h16_past > 0.5).sum())} of {len(self.h16_past)}. Silent SiLU units "
                f"(|value| < {self.SILENT:g} on every cell): {sum(silent.values())} of {total} ({where}).")


def engine_metrics(net, clean: torch.Tensor, repeats: int) -> tuple[str, dict]:
    g = torch.Generator().manual_seed(SEED)
    abs_err = torch.zeros(8, dtype=torch.float64)
    count = 0
    hit = torch.zeros(8, dtype=torch.float64)
    strong = torch.zeros(8, dtype=torch.float64)
    alone_hit, alone = torch.zeros(8, dtype=torch.float64), torch.zeros(8, dtype=torch.float64)
    faint = torch.zeros(8, dtype=torch.float64)  # sign errors where |map| < 0.05
    peaks = []
    watch = UnitWatch(net)
    for _ in range(repeats):
        ref, img, lab = make_triplets(clean, g)
        pred = predict(net, ref, img)
        peaks.append(pred.abs().amax((1, 2, 3)))
        abs_err += (pred - lab).abs().double().sum((0, 2, 3))
        count += lab[:, 0].numel()
        s = lab.abs() > 0.2
        right = torch.sign(pred) == torch.sign(lab)
        hit += (right & s).double().sum((0, 2, 3))
        strong += s.double().sum((0, 2, 3))
        only = s & ((lab.abs() > LABELLED).sum(1, keepdim=True) == 1)  # no other channel labelled at the cell
        alone_hit += (right & only).double().sum((0, 2, 3))
        alone += only.double().sum((0, 2, 3))
        faint += (~right & s & (pred.abs() < 0.05)).double().sum((0, 2, 3))
    mae = abs_err / count
    acc = hit / strong.clamp_min(1)
    with_hit, with_n = hit - alone_hit, strong - alone
    rows = ["| channel | MAE | sign accuracy (|label| > 0.2) | sign, channel alone at the cell | "
            "sign, other channels there too | share of sign errors with \\|map\\| < 0.05 | labelled pixels |",
            "|---|---|---|---|---|---|---|"]

    def pct(a: torch.Tensor, b: torch.Tensor) -> str:
        return f"{100 * a / b:.1f}%" if b > 0 else "-"

    for c, name in enumerate(CHANNELS):
        rows.append(f"| {name} | {mae[c]:.4f} | {100 * acc[c]:.1f}% | {pct(alone_hit[c], alone[c])} | "
                    f"{pct(with_hit[c], with_n[c])} | {pct(faint[c], strong[c] - hit[c])} | {int(strong[c])} |")
    total = hit.sum() / strong.sum()
    rows.append(f"| **all** | {mae.mean():.4f} | **{100 * total:.1f}%** | {pct(alone_hit.sum(), alone.sum())} | "
                f"{pct(with_hit.sum(), with_n.sum())} | {pct(faint.sum(), strong.sum() - hit.sum())} | "
                f"{int(strong.sum())} |")
    watch.remove()
    peak = torch.cat(peaks)
    rows.append("\n" + watch.summary())
    rows.append(f"\nLargest |map| value per triplet (labels lie in [-1, 1]): median {peak.median():.2f}, "
                f"max {peak.max():.2f}; {int((peak > 2).sum())} of {len(peak)} triplets exceed 2.")
    return "\n".join(rows), {"sign_accuracy": float(total)}


def crosstalk(net, clean: torch.Tensor) -> tuple[str, dict]:
    n, _, h, w = clean.shape
    g = torch.Generator().manual_seed(SEED + 1)
    mat = torch.zeros(8, 8, dtype=torch.float64)
    for i, name in enumerate(CHANNELS):
        strength = torch.zeros(n, 8)
        strength[:, i] = 0.3 + 0.7 * torch.rand(n, generator=g)
        neg_ok = (name, -1) in OPERATORS
        sign = torch.zeros(n, 8, dtype=torch.long)
        sign[:, i] = torch.where((torch.rand(n, generator=g) < 0.5) & neg_ok, -1, 1)
        variant = torch.zeros(n, 8, dtype=torch.long)
        for sg in (1, -1):
            k = len(OPERATORS.get((name, sg), ()))
            if k:
                variant[:, i] = torch.where(sign[:, i] == sg, torch.randint(0, k, (n,), generator=g), variant[:, i])
        recipe = Recipe(strength, sign, variant, torch.ones(n, 8, h, w))
        img = apply_recipe(clean, recipe, g)
        mat[i] = predict(net, clean, img).abs().double().mean((0, 2, 3))
    rel = mat / mat.diag().view(-1, 1)
    off = rel.clone().fill_diagonal_(0)
    rows = ["| applied \\ response | " + " | ".join(CHANNELS) + " |", "|---" * 9 + "|"]
    for i, name in enumerate(CHANNELS):
        cells = [f"**{rel[i, j]:.2f}** ({mat[i, j]:.3f})" if i == j else f"{rel[i, j]:.2f}" for j in range(8)]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    worst = float(off.max())
    i, j = divmod(int(off.argmax()), 8)
    rows.append(f"\nLargest cross-talk: {worst:.2f} of the diagonal ({CHANNELS[i]} read as {CHANNELS[j]}); "
                f"{int((off > 0.1).sum())} of 56 off-diagonal entries exceed 0.1.")
    return "\n".join(rows), {"max_crosstalk": worst}


def crosstalk_by_operator(net, clean: torch.Tensor) -> str:
    """Each operator alone, whole image, strength uniform in [0.3, 1]: its largest off-channel
    response relative to its own channel's, and how consistent that response's sign is (mean signed
    map over mean |map| per image, averaged: +-1 when it always goes one way). Shows which operators'
    side effects the cross-talk entries come from."""
    n, _, h, w = clean.shape
    g = torch.Generator().manual_seed(SEED + 2)
    rows = ["| channel, sign | operator | own channel mean \\|map\\| | largest other channel (of own) | its sign "
            "consistency |", "|---|---|---|---|---|"]
    for (name, sg), fns in OPERATORS.items():
        i = INDEX[name]
        for v, fn in enumerate(fns):
            strength = torch.zeros(n, 8)
            strength[:, i] = 0.3 + 0.7 * torch.rand(n, generator=g)
            sign = torch.zeros(n, 8, dtype=torch.long)
            sign[:, i] = sg
            variant = torch.zeros(n, 8, dtype=torch.long)
            variant[:, i] = v
            img = apply_recipe(clean, Recipe(strength, sign, variant, torch.ones(n, 8, h, w)), g)
            maps = predict(net, clean, img).double()
            mag = maps.abs().mean((0, 2, 3))
            rel = mag / mag[i]
            rel[i] = -1
            j = int(rel.argmax())
            per_image = maps[:, j].mean((1, 2)) / maps[:, j].abs().mean((1, 2)).clamp_min(1e-12)
            rows.append(f"| {name} {'+' if sg > 0 else '-'} | {fn.__name__} | {mag[i]:.3f} | {CHANNELS[j]} "
                        f"{rel[j]:.2f} | {per_image.mean():+.2f} |")
    return "\n".join(rows)


# ----------------------------------------------------------------------------- independent distortions
def _pil(x: torch.Tensor) -> Image.Image:
    return Image.fromarray((x.permute(1, 2, 0).numpy() * 255 + 0.5).clip(0, 255).astype(np.uint8))


def _tensor(im: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)


def _jpeg(im: Image.Image, q: int) -> Image.Image:
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=q)
    return Image.open(io.BytesIO(buf.getvalue()))


def _matrix(r: float, g: float, b: float):
    return lambda im: im.convert("RGB", (r, 0, 0, 0, 0, g, 0, 0, 0, 0, b, 0))


def _noise(sigma: float, rng: np.random.Generator):
    def f(im: Image.Image) -> Image.Image:
        a = np.asarray(im, dtype=np.float64) / 255
        a = a + rng.normal(0, sigma, a.shape)
        return Image.fromarray((a.clip(0, 1) * 255 + 0.5).astype(np.uint8))
    return f


def _poisson(peak: float, rng: np.random.Generator):
    def f(im: Image.Image) -> Image.Image:
        a = np.asarray(im, dtype=np.float64) / 255
        a = rng.poisson(a * peak) / peak
        return Image.fromarray((a.clip(0, 1) * 255 + 0.5).astype(np.uint8))
    return f


def _downup(factor: int):
    def f(im: Image.Image) -> Image.Image:
        w, h = im.size
        return im.resize((w // factor, h // factor), Image.BICUBIC).resize((w, h), Image.BICUBIC)
    return f


def independent_cases(rng: np.random.Generator) -> list[tuple[str, str, int, object, object]]:
    """(description, expected channel, expected sign, function on a PIL image, reference): the
    reference is the clean image when False, the distorted one when True (the pair swapped, the
    clean image then being the one judged), or made by a function of its own (e.g. the noisy
    image that a denoiser was given)."""
    E = ImageEnhance
    return [
        ("Pillow GaussianBlur r=1", "blur", 1, lambda im: im.filter(ImageFilter.GaussianBlur(1)), False),
        ("Pillow GaussianBlur r=2.5", "blur", 1, lambda im: im.filter(ImageFilter.GaussianBlur(2.5)), False),
        ("Pillow BoxBlur r=2", "blur", 1, lambda im: im.filter(ImageFilter.BoxBlur(2)), False),
        ("Pillow bicubic down-up x3", "blur", 1, _downup(3), False),
        ("Pillow UnsharpMask r=2 150%", "blur", -1, lambda im: im.filter(ImageFilter.UnsharpMask(2, 150, 0)), False),
        ("Pillow UnsharpMask r=3 300%", "blur", -1, lambda im: im.filter(ImageFilter.UnsharpMask(3, 300, 0)), False),
        ("numpy gaussian noise sigma=0.04", "noise", 1, _noise(0.04, rng), False),
        ("numpy gaussian noise sigma=0.08", "noise", 1, _noise(0.08, rng), False),
        ("numpy Poisson noise peak=60", "noise", 1, _poisson(60, rng), False),
        ("numpy noise 0.06, pair swapped (denoised)", "noise", -1, _noise(0.06, rng), True),
        ("Pillow JPEG q=10", "jpeg", 1, lambda im: _jpeg(im, 10), False),
        ("Pillow JPEG q=25", "jpeg", 1, lambda im: _jpeg(im, 25), False),
        ("Pillow JPEG q=15, pair swapped", "jpeg", -1, lambda im: _jpeg(im, 15), True),
        ("Pillow Brightness 1.4", "brightness", 1, lambda im: E.Brightness(im).enhance(1.4), False),
        ("Pillow Brightness 0.6", "brightness", -1, lambda im: E.Brightness(im).enhance(0.6), False),
        ("Pillow Contrast 1.6", "contrast", 1, lambda im: E.Contrast(im).enhance(1.6), False),
        ("Pillow Contrast 0.5", "contrast", -1, lambda im: E.Contrast(im).enhance(0.5), False),
        ("Pillow Color 1.8", "saturation", 1, lambda im: E.Color(im).enhance(1.8), False),
        ("Pillow Color 0.3", "saturation", -1, lambda im: E.Color(im).enhance(0.3), False),
        ("Pillow colour matrix R x1.15 B x0.85", "warmth", 1, _matrix(1.15, 1.0, 0.85), False),
        ("Pillow colour matrix R x0.85 B x1.15", "warmth", -1, _matrix(0.85, 1.0, 1.15), False),
        ("Pillow colour matrix G x0.85 R,B x1.06", "tint", 1, _matrix(1.06, 0.85, 1.06), False),
        ("Pillow colour matrix G x1.12 R,B x0.95", "tint", -1, _matrix(0.95, 1.12, 0.95), False),
        ("OpenCV GaussianBlur sigma=1.5", "blur", 1, cv.gaussian_blur(1.5), False),
        ("OpenCV medianBlur 5x5", "blur", 1, cv.median_blur(5), False),
        ("OpenCV INTER_AREA down x3, INTER_CUBIC up", "blur", 1, cv.area_down_cubic_up(3), False),
        ("OpenCV addWeighted unsharp 150%", "blur", -1, cv.sharpen(1.5), False),
        ("OpenCV randn noise sigma=0.05", "noise", 1, cv.randn_noise(0.05, SEED), False),
        ("OpenCV fastNlMeans: noisy (0.06) reference, denoised image", "noise", -1, cv.nlmeans_denoised(0.06, SEED),
         cv.randn_noise(0.06, SEED)),
        ("OpenCV imencode JPEG q=15", "jpeg", 1, cv.jpeg(15), False),
        ("OpenCV convertScaleAbs +40", "brightness", 1, cv.scale_offset(1.0, 40), False),
        ("OpenCV convertScaleAbs x0.6", "brightness", -1, cv.scale_offset(0.6, 0), False),
        ("OpenCV convertScaleAbs x1.5 about 128", "contrast", 1, cv.scale_offset(1.5, -64), False),
        ("OpenCV convertScaleAbs x0.6 about 128", "contrast", -1, cv.scale_offset(0.6, 51.2), False),
        ("OpenCV HSV S x1.6", "saturation", 1, cv.hsv_saturation(1.6), False),
        ("OpenCV HSV S x0.4", "saturation", -1, cv.hsv_saturation(0.4), False),
        ("OpenCV Lab b* +12 (yellow)", "warmth", 1, cv.lab_shift(b=12), False),
        ("OpenCV Lab b* -12 (blue)", "warmth", -1, cv.lab_shift(b=-12), False),
        ("OpenCV Lab a* +10 (magenta)", "tint", 1, cv.lab_shift(a=10), False),
        ("OpenCV Lab a* -10 (green)", "tint", -1, cv.lab_shift(a=-10), False),
    ]


def independent(net, clean: torch.Tensor) -> tuple[str, dict]:
    rng = np.random.default_rng(SEED)
    rows = ["| distortion (independent code) | expected | right channel strongest | right sign | "
            "mean map on expected | strongest other channel |", "|---|---|---|---|---|---|"]
    right_all, sign_all, total, unchanged, strict_all = 0, 0, 0, 0, 0
    by_code: dict[str, list[int]] = {}  # implementation (first word of the description): [right, cases]
    for desc, chan, sign, fn, reference in independent_cases(rng):
        ims = [_pil(x) for x in clean]
        dist = torch.stack([_tensor(fn(im)) for im in ims])
        if callable(reference):
            ref, img = torch.stack([_tensor(reference(im)) for im in ims]), dist
        else:
            base = torch.stack([_tensor(im) for im in ims])
            ref, img = (dist, base) if reference else (base, dist)
        # a distortion that changes no pixel (a colour change of a grey photo) has nothing to detect: not counted
        changed = (img - ref).abs().amax((1, 2, 3)) > 0.5 / 255
        unchanged += int((~changed).sum())
        if not changed.any():
            rows.append(f"| {desc} | {chan} {'+' if sign > 0 else '-'} | no photo changed | | | |")
            continue
        maps = predict(net, ref[changed], img[changed]).double()
        means = maps.mean((2, 3))
        c = INDEX[chan]
        strongest = means.abs().argmax(1)
        right = (strongest == c)
        good_sign = torch.sign(means[:, c]) == sign
        other = means.abs().clone()
        other[:, c] = -1
        j = int(other.mean(0).argmax())
        right_all += int((right & good_sign).sum())
        # stricter: strongest by mean |map|, where off-channel responses of changing sign cannot cancel out
        strict_all += int(((maps.abs().mean((2, 3)).argmax(1) == c) & good_sign).sum())
        sign_all += int(good_sign.sum())
        total += len(right)
        tally = by_code.setdefault(desc.split()[0], [0, 0])
        tally[0] += int((right & good_sign).sum())
        tally[1] += len(right)
        rows.append(f"| {desc} | {chan} {'+' if sign > 0 else '-'} | {100 * right.double().mean():.0f}% | "
                    f"{100 * good_sign.double().mean():.0f}% | {means[:, c].mean():+.3f} | "
                    f"{CHANNELS[j]} {means[:, j].mean():+.3f} |")
    frac = right_all / total
    rows.append(f"\nRight channel strongest and right sign: **{100 * frac:.1f}%** of {total} cases; "
                f"right sign on the expected channel: {100 * sign_all / total:.1f}%; right channel strongest by "
                f"mean |map| instead of |mean map| (a stricter reading, where a response of changing sign on "
                f"another channel cannot cancel out) and right sign: {100 * strict_all / total:.1f}%. By implementation: "
                + ", ".join(f"{code} {100 * r / n:.1f}% of {n}" for code, (r, n) in by_code.items()) + "."
                + (f" Not counted: {unchanged} cases where the distortion changed no pixel (by more than half a "
                   "grey level), e.g. a saturation change of a grey photo." if unchanged else ""))
    return "\n".join(rows), {"independent_right": frac}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/cbsd68", help="evaluation photos (never trained on)")
    ap.add_argument("--weights", default=None, help="predictor weights (default: the packaged ones)")
    ap.add_argument("--repeats", type=int, default=3, help="engine triplets per image")
    ap.add_argument("--quick", action="store_true", help="8 images, 1 repeat, print only")
    args = ap.parse_args(argv)
    net = load_predictor(args.weights)
    clean, small = centre_crops(args.data, 8 if args.quick else None)
    t1, m1 = engine_metrics(net, clean, 1 if args.quick else args.repeats)
    t2, m2 = crosstalk(net, clean)
    t2b = crosstalk_by_operator(net, clean)
    t3, m3 = independent(net, clean)
    targets = (f"Targets: sign accuracy >= 95% (got {100 * m1['sign_accuracy']:.1f}%), right channel in >= 90% of "
               f"independent cases (got {100 * m3['independent_right']:.1f}%), cross-talk < 0.1 of the diagonal "
               f"(worst {m2['max_crosstalk']:.2f}).")
    skipped = f"; smaller, skipped: {', '.join(small)}" if small else ""
    md = (f"Evaluation images: `{args.data}` ({len(clean)} centre crops of {CROP}x{CROP}{skipped}), weights: "
          f"`{weights_label(args.weights)}`.\n\n{targets}\n\n### Engine triplets (seed {SEED}, {args.repeats} per image)\n\n"
          f"{t1}\n\n### Cross-talk (row: channel applied alone; entries relative to the diagonal, "
          f"absolute mean |map| in brackets)\n\n{t2}\n\n### Cross-talk by operator (each operator alone; where the "
          f"entries above come from)\n\n{t2b}\n\n### Independent implementations\n\n{t3}\n")
    print(md)
    if not args.quick:
        cmd = f"python -m benchmarks.predictor_accuracy --data {args.data}"  # written for the packaged weights only
        folder = Path(args.data).name
        write_weights_section("predictor_accuracy" + ("" if folder == "cbsd68" else f"_{folder}"), md, cmd, args.weights)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
