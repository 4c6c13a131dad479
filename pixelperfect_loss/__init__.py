"""pixelperfect_loss: a learned, directional, per-channel image-quality loss for PyTorch.

Example:
    >>> import torch
    >>> from pixelperfect_loss import PixelPerfectLoss
    >>> loss_fn = PixelPerfectLoss(channels=["blur", "noise"])
    >>> x = torch.rand(1, 3, 32, 32)
    >>> loss_fn(x, x).item()
    0.0
"""

from .channels import CHANNELS
from .functional import distortion_maps, pixelperfect_loss
from .loss import PixelPerfectLoss
from .metric import PixelPerfect
from .nets import DistortionPredictor, RelationalScorer

__version__ = "0.1.0"
__all__ = ["CHANNELS", "DistortionPredictor", "PixelPerfect", "PixelPerfectLoss", "RelationalScorer", "__version__",
           "distortion_maps", "pixelperfect_loss"]
