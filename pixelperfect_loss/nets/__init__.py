"""The networks: the anti-symmetric distortion predictor and the relational scorer."""

from .predictor import MIN_SIZE, DistortionPredictor
from .scorer import RelationalScorer, generic_features, map_features, scorer_features

__all__ = ["MIN_SIZE", "DistortionPredictor", "RelationalScorer", "generic_features", "map_features",
           "scorer_features"]
