"""Model registry: config `model` name → TranslationModel subclass (which also declares the
model's config defaults and checks)."""

from i2i.errors import ConfigError

from .base import TranslationModel
from .cut import CUTModel, FastCUTModel
from .cycle_gan import CycleGANModel
from .distill import DistillModel
from .recycle_gan import RecycleGANModel

MODELS: dict[str, type[TranslationModel]] = {
    "cycle_gan": CycleGANModel,
    "cut": CUTModel,
    "fastcut": FastCUTModel,
    "recycle_gan": RecycleGANModel,
    "distill": DistillModel,
}

# The models `i2i train` trains from data alone (a student needs its teacher: `i2i distill`).
TRAINABLE = tuple(name for name in MODELS if name != "distill")
# The other spellings users bring along (JoliGEN and `i2i import --from` say cyclegan).
ALIASES = {"cyclegan": "cycle_gan", "recyclegan": "recycle_gan"}
NAMES = (*TRAINABLE, *ALIASES)


def canonical_name(name: str) -> str:
    """A model name or one of its aliases → the name configs store."""
    return ALIASES.get(name, name)


def model_class(name: object) -> type[TranslationModel]:
    """The class of config `model` `name`; ConfigError naming the choices otherwise."""
    if not isinstance(name, str) or name not in MODELS:
        raise ConfigError(f"model '{name}' is not one of {', '.join(MODELS)}")
    return MODELS[name]


__all__ = ["ALIASES", "MODELS", "NAMES", "TRAINABLE", "TranslationModel", "canonical_name", "model_class"]
