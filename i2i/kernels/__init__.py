"""Triton kernels for the generators' hot paths, with their torch references."""
