"""Model registry: config `model` name → TranslationModel subclass."""

from .base import TranslationModel
from .cut import CUTModel
from .cycle_gan import CycleGANModel
from .recycle_gan import RecycleGANModel

MODELS: dict[str, type[TranslationModel]] = {"cycle_gan": CycleGANModel, "cut": CUTModel, "fastcut": CUTModel,
                                           "recycle_gan": RecycleGANModel}

__all__ = ["MODELS", "TranslationModel"]
