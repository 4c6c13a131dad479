"""The synthetic distortion engine: operators, masks, triplets and ranked sets."""

from .masks import random_masks
from .operators import luma
from .recipes import (OPERATORS, ORDER, RankedSets, Recipe, Triplets, apply_recipe, make_ranked_sets,
                      make_triplets, random_recipe)

__all__ = ["OPERATORS", "ORDER", "RankedSets", "Recipe", "Triplets", "apply_recipe", "luma",
           "make_ranked_sets", "make_triplets", "random_masks", "random_recipe"]
