"""Epilogue pieces every kernel shares: the activation switch and the instance-norm moments
a producer writes for the normalize pass."""

from __future__ import annotations

import triton
import triton.language as tl

ACTIVATION_CODES = {"none": 0, "relu": 1, "leaky_relu": 2, "tanh": 3}


@triton.jit
def apply_activation(y, ACTIVATION: tl.constexpr, negative_slope):
    """y after the activation ACTIVATION_CODES names; fp32 in, fp32 out."""
    if ACTIVATION == 1:
        y = tl.maximum(y, 0.0)
    elif ACTIVATION == 2:
        y = tl.where(y >= 0, y, y * negative_slope)
    elif ACTIVATION == 3:
        y = 1.0 - 2.0 / (tl.exp(2.0 * y) + 1.0)  # tanh, saturating cleanly at ±1 (no inf/inf)
    return y


@triton.jit
def store_moments(partial_ptr, n, channels, c_mask, C, split, n_splits, mean, m2, count):
    """Write one split's (mean, M2, count) per channel; partials are laid out [N, C, n_splits, 3] in fp32."""
    slot = partial_ptr + ((n * C + channels).to(tl.int64) * n_splits + split) * 3
    tl.store(slot, mean, mask=c_mask)
    tl.store(slot + 1, m2, mask=c_mask)
    tl.store(slot + 2, count, mask=c_mask)
