"""i2i: unpaired image-to-image translation — train, export, run."""

__version__ = "0.1.0"
