"""Evaluation: how good a translation is — distances to the target domain, label preservation,
contact sheets — behind one evaluate() that `i2i eval` calls."""
