"""Model registry: config `model` name → TranslationModel subclass."""

from .base import TranslationModel
from .cycle_gan import CycleGANModel

MODELS: dict[str, type[TranslationModel]] = {"cycle_gan": CycleGANModel}

__all__ = ["MODELS", "TranslationModel"]
