"""Model registry: config `model` name → TranslationModel subclass."""

from .base import TranslationModel
from .cut import CUTModel
from .cycle_gan import CycleGANModel

MODELS: dict[str, type[TranslationModel]] = {"cycle_gan": CycleGANModel, "cut": CUTModel, "fastcut": CUTModel}

__all__ = ["MODELS", "TranslationModel"]
