"""Inference: predictors over trained generators and the jobs built on them."""

from .predictor import Predictor, load

__all__ = ["Predictor", "load"]
