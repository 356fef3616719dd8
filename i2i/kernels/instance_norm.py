"""Fused instance norm in Triton: statistics pass + normalize pass with a fused epilogue.

y = act((x − mean) · rstd · weight + bias) (+ residual), statistics per (n, c) over H×W.

Pass 1 splits each (n, c) plane into chunks, one program per (n, channel block, chunk), and
writes the chunk's (mean, M2, count) of x − x[0]: Welford's update per tile element, the tile
merged with Chan's parallel formula at the end, so there is no E[x²]−E[x]² cancellation. Pass 2
merges the partials of its plane the same way (more than MAX_SPLITS are merged by a kernel of
their own first) and normalizes its chunk as ((x − x[0]) − mean) · rstd. The conv kernel can
write the same partials from its epilogue (kernels/conv.py), leaving only pass 2. Accumulation
is fp32 for fp16/bf16/fp32 storage; NCHW and channels_last both work through strides. Both
passes split planes into enough chunks for TARGET_PROGRAMS programs: one 1080p plane per
channel block is a whole GPU's work.

Every launch uses one of the few tiles in NORM_TILES (and MERGE_BLOCK, PLANE_BLOCK), so the
ahead-of-time report (kernels/aot.py) can compile each configuration a launch can take.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from .epilogue import ACTIVATION_CODES, apply_activation, store_moments

MAX_SPLITS = 64  # partials the apply kernel merges itself; more are merged by merge_partials_kernel first
MERGE_BLOCK = 8  # partials merged per step of the apply kernel's loop
TARGET_PROGRAMS = 1024  # enough programs to fill an H100's 132 SMs several times over


@dataclass(frozen=True)
class NormTile:
    """A program's tile: BLOCK_C channels × BLOCK_HW pixels (4096 elements, or 1024 along a plane)."""

    block_c: int
    block_hw: int
    num_warps: int = 4


NCHW_TILE = NormTile(1, 1024)  # a run of pixels of one plane
CHANNELS_LAST_TILE = NormTile(64, 64, 8)  # 64 channels (the generators have 64–256) of 64 pixels; 4 warps spill
NORM_TILES = (NCHW_TILE, CHANNELS_LAST_TILE)


@triton.jit
def merge_moments(mean_a, m2_a, count_a, mean_b, m2_b, count_b):
    """Chan et al.'s pairwise merge of (mean, M2, count); empty sides (count 0) are neutral."""
    count = count_a + count_b
    safe = tl.where(count > 0, count, 1.0)
    delta = mean_b - mean_a
    mean = mean_a + delta * (count_b / safe)
    m2 = m2_a + m2_b + delta * delta * (count_a * count_b / safe)
    return mean, m2, count


@triton.jit
def _plane_offsets(pid_plane, C, n_c_blocks, BLOCK_C: tl.constexpr):
    n = pid_plane // n_c_blocks
    channels = (pid_plane % n_c_blocks) * BLOCK_C + tl.arange(0, BLOCK_C)
    return n, channels, channels < C


@triton.jit
def instance_norm_stats_kernel(
    x_ptr,
    partial_ptr,
    C,
    HW,
    stride_n,
    stride_c,
    stride_hw,
    chunk,
    n_splits,
    n_c_blocks,
    BLOCK_HW: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    pid_plane, pid_split = tl.program_id(0), tl.program_id(1)
    n, channels, c_mask = _plane_offsets(pid_plane, C, n_c_blocks, BLOCK_C)
    base = x_ptr + n.to(tl.int64) * stride_n + channels[None, :].to(tl.int64) * stride_c
    # Moments of x − x[0] (stored so; the apply kernel subtracts x[0] again): block sums of
    # large, nearly equal values would lose the mean's low digits in fp32, shifted they do not.
    pivot = tl.load(base, mask=c_mask[None, :], other=0.0).to(tl.float32)
    start = pid_split * chunk
    # Welford's update per tile element, reduced across the tile once at the end: a reduction per
    # step synchronizes the program's warps between its loads (measured on an H200: the pass ran
    # at a sixth of copy bandwidth that way).
    # A row's pixel is in or out for all its channels: one count per row (channels past C are
    # discarded at the store).
    mean = tl.zeros([BLOCK_HW, BLOCK_C], tl.float32)
    m2 = tl.zeros([BLOCK_HW, BLOCK_C], tl.float32)
    count = tl.zeros([BLOCK_HW, 1], tl.float32)
    # Loop bounds are plain arguments: Triton 3.6's interpreter cannot bound a loop by a computed value.
    for offset in range(0, chunk, BLOCK_HW):
        hw = (start + offset + tl.arange(0, BLOCK_HW))[:, None]
        inside = hw < HW
        x = tl.load(base + hw.to(tl.int64) * stride_hw, mask=inside & c_mask[None, :], other=0.0).to(tl.float32)
        count += inside.to(tl.float32)
        delta = tl.where(inside, (x - pivot) - mean, 0.0)
        mean += delta / tl.maximum(count, 1.0)
        m2 += delta * ((x - pivot) - mean)
    mean, m2, count = tl.reduce((mean, m2, count + tl.zeros_like(mean)), 0, merge_moments)
    store_moments(partial_ptr, n, channels, c_mask, C, pid_split, n_splits, mean, m2, count)


@triton.jit
def merge_partials_kernel(partial_ptr, merged_ptr, n_splits, BLOCK_S: tl.constexpr):
    """Merge the n_splits partials of one (n, c) plane into one; used when a producer (the
    conv epilogue) wrote more partials than the apply kernel merges itself."""
    plane = tl.program_id(0).to(tl.int64)
    reference = tl.load(partial_ptr + plane * n_splits * 3)
    mean = tl.zeros([BLOCK_S], tl.float32)
    m2 = tl.zeros([BLOCK_S], tl.float32)
    count = tl.zeros([BLOCK_S], tl.float32)
    for offset in range(0, n_splits, BLOCK_S):
        s = offset + tl.arange(0, BLOCK_S)
        slot = partial_ptr + (plane * n_splits + s) * 3
        mask = s < n_splits
        mean, m2, count = merge_moments(
            mean,
            m2,
            count,
            tl.load(slot, mask=mask, other=0.0) - reference,
            tl.load(slot + 1, mask=mask, other=0.0),
            tl.load(slot + 2, mask=mask, other=0.0),
        )
    mean, m2, count = tl.reduce((mean, m2, count), 0, merge_moments)
    tl.store(merged_ptr + plane * 3, reference + mean)
    tl.store(merged_ptr + plane * 3 + 1, m2)
    tl.store(merged_ptr + plane * 3 + 2, count)


@triton.jit
def instance_norm_apply_kernel(
    x_ptr,
    y_ptr,
    residual_ptr,
    weight_ptr,
    bias_ptr,
    partial_ptr,
    C,
    HW,
    stride_n,
    stride_c,
    stride_hw,
    y_stride_n,
    y_stride_c,
    y_stride_hw,
    r_stride_n,
    r_stride_c,
    r_stride_hw,
    chunk,
    n_splits,
    n_c_blocks,
    eps,
    negative_slope,
    ACTIVATION: tl.constexpr,
    HAS_AFFINE: tl.constexpr,
    HAS_RESIDUAL: tl.constexpr,
    SHIFTED: tl.constexpr,
    MERGE: tl.constexpr,
    BLOCK_HW: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    pid_plane, pid_split = tl.program_id(0), tl.program_id(1)
    n, channels, c_mask = _plane_offsets(pid_plane, C, n_c_blocks, BLOCK_C)

    planes = (n * C + channels[None, :]).to(tl.int64) * n_splits
    # Partial means merged as differences from the first one (exact for nearby values), so the
    # merged mean is rounded once, not once per merge.
    reference = tl.load(partial_ptr + planes * 3, mask=c_mask[None, :], other=0.0)
    mean = tl.zeros([MERGE, BLOCK_C], tl.float32)
    m2 = tl.zeros([MERGE, BLOCK_C], tl.float32)
    count = tl.zeros([MERGE, BLOCK_C], tl.float32)
    for s0 in range(0, n_splits, MERGE):
        splits = s0 + tl.arange(0, MERGE)[:, None]
        slot = partial_ptr + (planes + splits) * 3
        p_mask = (splits < n_splits) & c_mask[None, :]
        mean, m2, count = merge_moments(
            mean,
            m2,
            count,
            tl.load(slot, mask=p_mask, other=0.0) - reference,
            tl.load(slot + 1, mask=p_mask, other=0.0),
            tl.load(slot + 2, mask=p_mask, other=0.0),
        )
    mean, m2, count = tl.reduce((mean, m2, count), 0, merge_moments)
    mean += tl.sum(reference, axis=0)
    scale = 1.0 / tl.sqrt(m2 / tl.maximum(count, 1.0) + eps)
    shift = tl.zeros([BLOCK_C], tl.float32)
    if HAS_AFFINE:
        scale *= tl.load(weight_ptr + channels, mask=c_mask, other=1.0).to(tl.float32)
        shift = tl.load(bias_ptr + channels, mask=c_mask, other=0.0).to(tl.float32)

    n64 = n.to(tl.int64)
    c64 = channels[None, :].to(tl.int64)
    pivot = tl.zeros([1, BLOCK_C], tl.float32)
    if SHIFTED:  # the partials are moments of x − x[0] (the stats kernel's)
        pivot = tl.load(x_ptr + n64 * stride_n + c64 * stride_c, mask=c_mask[None, :], other=0.0).to(tl.float32)
    start = pid_split * chunk
    for offset in range(0, chunk, BLOCK_HW):
        hw = (start + offset + tl.arange(0, BLOCK_HW))[:, None]
        mask = (hw < HW) & c_mask[None, :]
        hw = hw.to(tl.int64)
        x = tl.load(x_ptr + n64 * stride_n + c64 * stride_c + hw * stride_hw, mask=mask, other=0.0).to(tl.float32)
        # (x − x[0] − mean)·scale, not x·scale − mean·scale: subtracting nearly equal values
        # is exact, the difference of two large products is not.
        y = apply_activation(
            ((x - pivot) - mean[None, :]) * scale[None, :] + shift[None, :], ACTIVATION, negative_slope
        )
        if HAS_RESIDUAL:
            r_offsets = n64 * r_stride_n + c64 * r_stride_c + hw * r_stride_hw
            y += tl.load(residual_ptr + r_offsets, mask=mask, other=0.0).to(tl.float32)
        y_offsets = n64 * y_stride_n + c64 * y_stride_c + hw * y_stride_hw
        tl.store(y_ptr + y_offsets, y.to(y_ptr.dtype.element_ty), mask=mask)


def spatial_strides(t: torch.Tensor) -> tuple[int, int, int]:
    """(n, c, hw) strides of an NCHW tensor whose H and W are jointly flat (contiguous NCHW or
    channels_last); raises for layouts the kernels cannot address with one hw stride."""
    n, c, h, w = t.shape
    if h > 1 and w > 0 and t.stride(2) != w * t.stride(3):
        raise ValueError(
            f"unsupported strides {t.stride()} for shape {tuple(t.shape)}: use contiguous or channels_last"
        )
    return t.stride(0), t.stride(1), t.stride(3)


def plan(x: torch.Tensor, tile: NormTile | None = None) -> dict:
    """The tile and the split of each plane: tiles follow the memory layout (a run of channels
    for channels_last, a run of pixels for NCHW) unless `tile` is given."""
    n, c, h, w = x.shape
    hw = h * w
    channels_last = x.stride(1) == 1 and c > 1
    tile = tile or (CHANNELS_LAST_TILE if channels_last else NCHW_TILE)
    n_c_blocks = triton.cdiv(c, tile.block_c)
    want = max(1, min(TARGET_PROGRAMS // (n * n_c_blocks), triton.cdiv(hw, tile.block_hw)))
    chunk = triton.cdiv(triton.cdiv(hw, want), tile.block_hw) * tile.block_hw
    return {"tile": tile, "n_c_blocks": n_c_blocks, "chunk": chunk, "n_splits": triton.cdiv(hw, chunk)}


def instance_norm(
    x: torch.Tensor,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    eps: float = 1e-5,
    activation: str = "none",
    negative_slope: float = 0.2,
    residual: torch.Tensor | None = None,
    partials: tuple[torch.Tensor, int] | None = None,
    tile: NormTile | None = None,
) -> torch.Tensor:
    """Fused instance norm of an NCHW tensor (any memory format the strides allow).

    `partials` = (buffer [N, C, splits, 3], splits) skips the statistics pass, e.g. when the
    producing convolution already accumulated them. `tile` overrides the layout's tile (to
    measure others: the ahead-of-time report covers NORM_TILES only).
    """
    if x.dim() != 4:
        raise ValueError(f"instance_norm expects NCHW, got shape {tuple(x.shape)}")
    if (weight is None) != (bias is None):
        raise ValueError("pass both weight and bias, or neither")
    if residual is not None and residual.shape != x.shape:
        raise ValueError(f"residual shape {tuple(residual.shape)} != input shape {tuple(x.shape)}")
    n, c, h, w = x.shape
    cfg = plan(x, tile)
    tile = cfg["tile"]
    strides = spatial_strides(x)
    grid = (n * cfg["n_c_blocks"], cfg["n_splits"])
    shifted = partials is None
    if shifted:
        buffer = torch.empty((n, c, cfg["n_splits"], 3), device=x.device, dtype=torch.float32)
        instance_norm_stats_kernel[grid](
            x,
            buffer,
            c,
            h * w,
            *strides,
            cfg["chunk"],
            cfg["n_splits"],
            cfg["n_c_blocks"],
            BLOCK_HW=tile.block_hw,
            BLOCK_C=tile.block_c,
            num_warps=tile.num_warps,
        )
        partials = buffer, cfg["n_splits"]
    buffer, n_splits = partials
    if n_splits > MAX_SPLITS:
        merged = torch.empty((n, c, 1, 3), device=x.device, dtype=torch.float32)
        merge_partials_kernel[(n * c,)](buffer, merged, n_splits, BLOCK_S=MAX_SPLITS)
        buffer, n_splits = merged, 1
    y = torch.empty_like(x)
    res = residual if residual is not None else x
    instance_norm_apply_kernel[grid](
        x,
        y,
        res,
        weight if weight is not None else x,
        bias if bias is not None else x,
        buffer,
        c,
        h * w,
        *strides,
        *spatial_strides(y),
        *spatial_strides(res),
        cfg["chunk"],
        n_splits,
        cfg["n_c_blocks"],
        eps,
        negative_slope,
        ACTIVATION=ACTIVATION_CODES[activation],
        HAS_AFFINE=weight is not None,
        HAS_RESIDUAL=residual is not None,
        SHIFTED=shifted,
        MERGE=MERGE_BLOCK,
        BLOCK_HW=tile.block_hw,
        BLOCK_C=tile.block_c,
        num_warps=tile.num_warps,
    )
    return y


@triton.jit
def instance_norm_plane_kernel(
    x_ptr,
    scale_ptr,
    bias_ptr,
    residual_ptr,
    C,
    HW,
    y_ptr,
    EPS: tl.constexpr,
    NEGATIVE_SLOPE: tl.constexpr,
    ACTIVATION: tl.constexpr,
    HAS_RESIDUAL: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """One program per contiguous NCHW plane: statistics loop, then normalize loop, in one
    launch with no scratch buffer — the form a TensorRT AOT plugin can embed. Arguments are
    ordered inputs, int32 scalars, output, as TensorRT's AOT plugins pass them; scale and
    bias are ONNX InstanceNormalization's (always present there)."""
    plane = tl.program_id(0)
    channel = plane % C
    base = plane.to(tl.int64) * HW
    pivot = tl.load(x_ptr + base).to(tl.float32)
    mean = tl.zeros([1], tl.float32)
    m2 = tl.zeros([1], tl.float32)
    count = tl.zeros([1], tl.float32)
    for offset in range(0, HW, BLOCK):
        hw = offset + tl.arange(0, BLOCK)
        mask = hw < HW
        x = tl.where(mask, tl.load(x_ptr + base + hw, mask=mask, other=0.0).to(tl.float32) - pivot, 0.0)
        block_count = tl.sum(mask.to(tl.float32), axis=0)
        block_mean = tl.sum(x, axis=0) / block_count
        centered = tl.where(mask, x - block_mean, 0.0)
        mean, m2, count = merge_moments(mean, m2, count, block_mean, tl.sum(centered * centered, axis=0), block_count)
    mean += pivot
    scale = tl.load(scale_ptr + channel).to(tl.float32) / tl.sqrt(m2 / count + EPS)
    shift = tl.load(bias_ptr + channel).to(tl.float32)
    for offset in range(0, HW, BLOCK):
        hw = offset + tl.arange(0, BLOCK)
        mask = hw < HW
        x = tl.load(x_ptr + base + hw, mask=mask, other=0.0).to(tl.float32)
        y = apply_activation((x - mean) * scale + shift, ACTIVATION, NEGATIVE_SLOPE)
        if HAS_RESIDUAL:
            y += tl.load(residual_ptr + base + hw, mask=mask, other=0.0).to(tl.float32)
        tl.store(y_ptr + base + hw, y.to(y_ptr.dtype.element_ty), mask=mask)


PLANE_BLOCK = 1024
PLANE_WARPS = 4


def instance_norm_planes(
    x: torch.Tensor,
    scale: torch.Tensor,
    bias: torch.Tensor,
    eps: float = 1e-5,
    activation: str = "none",
    negative_slope: float = 0.2,
    residual: torch.Tensor | None = None,
) -> torch.Tensor:
    """Launch the single-kernel plane variant on a contiguous NCHW tensor (what the TensorRT
    plugin runs; here for testing it and as the ONNX Runtime reference of the plugin)."""
    x = x.contiguous()
    n, c, h, w = x.shape
    y = torch.empty_like(x)
    instance_norm_plane_kernel[(n * c,)](
        x,
        scale,
        bias,
        residual.contiguous() if residual is not None else None,
        c,
        h * w,
        y,
        EPS=eps,
        NEGATIVE_SLOPE=negative_slope,
        ACTIVATION=ACTIVATION_CODES[activation],
        HAS_RESIDUAL=residual is not None,
        BLOCK=PLANE_BLOCK,
        num_warps=PLANE_WARPS,
    )
    return y
