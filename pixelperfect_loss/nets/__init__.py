"""The networks: the anti-symmetric distortion predictor (and, later, the relational scorer)."""

from .predictor import MIN_SIZE, DistortionPredictor

__all__ = ["MIN_SIZE", "DistortionPredictor"]
