"""Training: datasets, losses, models and the shared training loop."""
