"""The maps figure for two images of your own: the reference, the image, and one signed map per
channel (red: the image has more of it than the reference, blue: less).

    python examples/maps_figure.py REF IMG -o maps.png [--weights FOLDER]

Both images must have the same size (at least 16x16). Needs matplotlib.
"""

import argparse
from pathlib import Path

import torch

from pixelperfect_loss.cli import maps_figure
from pixelperfect_loss.data import read_image
from pixelperfect_loss.metric import PixelPerfect


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("reference", help="the reference image (PNG, JPEG or TIFF)")
    ap.add_argument("image", help="the image to compare with the reference, same size")
    ap.add_argument("-o", "--output", default="maps.png", help="PNG to write (default maps.png)")
    ap.add_argument("--weights", default=None, help="weights folder (default: the packaged weights)")
    args = ap.parse_args(argv)
    try:
        reference, image = read_image(args.reference)[None], read_image(args.image)[None]   # (1, 3, H, W), [0, 1]
    except (FileNotFoundError, ValueError) as exc:
        ap.error(str(exc))
    if reference.shape != image.shape:
        ap.error(f"the images differ in size: {tuple(reference.shape[-2:])} vs {tuple(image.shape[-2:])}")
    with torch.no_grad():
        maps = PixelPerfect(args.weights).maps(reference, image)                          # (1, 8, H, W) signed
    path = maps_figure(reference, image, maps, args.output,
                       title=f"{Path(args.image).name} vs {Path(args.reference).name}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
