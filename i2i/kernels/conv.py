"""Direct (implicit-GEMM) convolution in Triton with the generators' padding fused in.

One kernel covers the convolutions of the ResNet/U-Net generators: 3×3, 4×4 and 7×7,
stride 1 and 2, zero or reflection padding (no separate ReflectionPad2d pass), and the
transposed convolution of the decoder, computed as a gather (out[oh] takes x[(oh+p−kh)/s]
where that is an integer in range), which gives exactly ConvTranspose2d's output. The
epilogue adds the bias, optionally applies ReLU/LeakyReLU/tanh, and optionally writes the
per-tile instance-norm moments, so the following norm only runs its normalize pass.
Tiles never straddle two images, so each tile's moments belong to one (n, c) plane.

The kernel loops over kernel taps and, inside, over input-channel blocks: both are runtime
loops (not unrolled), so a 7×7 conv compiles to the same small body as a 3×3. A launch uses
one ConvTile; `launch_tiles` lists every tile a launch can take, for autotuning
(kernels/tuning.py) and the ahead-of-time resource report (kernels/aot.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from .epilogue import ACTIVATION_CODES, apply_activation, store_moments


@dataclass(frozen=True)
class ConvTile:
    """BLOCK_M output pixels × BLOCK_N output channels per program, BLOCK_K input channels per step."""

    block_m: int
    block_n: int
    block_k: int
    num_warps: int
    num_stages: int

    def fitted(self, c_in: int, c_out: int) -> "ConvTile":
        """This tile for a layer: a channel count of 16 or fewer (images in or out) gets a 16-wide
        block (tl.dot's minimum) instead of a mostly masked one."""
        return ConvTile(
            self.block_m,
            16 if c_out <= 16 else self.block_n,
            16 if c_in <= 16 else self.block_k,
            self.num_warps,
            self.num_stages,
        )

    @property
    def name(self) -> str:
        return f"m{self.block_m}n{self.block_n}k{self.block_k}w{self.num_warps}s{self.num_stages}"


# Tiles autotuning chooses among for fp16/bf16 (tensor cores); the first is the default
# where nothing was measured. fp32 runs the exact (IEEE) dot on one tile. Larger tiles (128×64
# on 4 warps, 128×128 on 8) spill registers on sm_90: the AOT report (kernels/aot.py) fails them.
HALF_TILES = (ConvTile(64, 64, 32, 4, 3), ConvTile(128, 64, 32, 8, 3), ConvTile(64, 128, 32, 8, 3))
FP32_TILES = (ConvTile(64, 64, 16, 4, 2),)


def candidate_tiles(dtype: torch.dtype, c_in: int, c_out: int) -> list[ConvTile]:
    """Tiles worth measuring for a layer: every tuned tile where both channel counts are wide,
    only the default where one side is a 1–3 channel image (the block is then fixed at 16)."""
    tiles = FP32_TILES if dtype == torch.float32 else HALF_TILES
    if c_in <= 16 or c_out <= 16:
        tiles = tiles[:1]
    return list(dict.fromkeys(tile.fitted(c_in, c_out) for tile in tiles))


def launch_tiles(dtype: torch.dtype) -> list[ConvTile]:
    """Every tile a launch of `dtype` can take (the union of candidate_tiles over layers)."""
    widths = (3, 64)  # an image side (≤ 16 channels) and a feature side
    return list(
        dict.fromkeys(tile for c_in in widths for c_out in widths for tile in candidate_tiles(dtype, c_in, c_out))
    )


@triton.jit
def _source_index(o, k, size, STRIDE: tl.constexpr, PAD: tl.constexpr, REFLECT: tl.constexpr, TRANSPOSED: tl.constexpr):
    """Input row (or column) read by output position `o` through kernel tap `k`, and whether it exists."""
    if TRANSPOSED:
        shifted = o + PAD - k
        i = shifted // STRIDE
        valid = (shifted >= 0) & (shifted % STRIDE == 0) & (i < size)
    else:
        i = o * STRIDE - PAD + k
        if REFLECT:
            i = tl.where(i < 0, -i, i)
            i = tl.where(i >= size, 2 * size - 2 - i, i)
        valid = (i >= 0) & (i < size)
    return tl.where(valid, i, 0), valid


@triton.jit
def conv2d_kernel(
    x_ptr,
    w_ptr,
    b_ptr,
    y_ptr,
    partial_ptr,
    C_in,
    H,
    W,
    C_out,
    OH,
    OW,
    sx_n,
    sx_c,
    sx_h,
    sx_w,
    sw_co,
    sw_ci,
    sw_h,
    sw_w,
    sy_n,
    sy_c,
    sy_h,
    sy_w,
    n_m_tiles,
    negative_slope,
    KH: tl.constexpr,
    KW: tl.constexpr,
    STRIDE: tl.constexpr,
    PAD: tl.constexpr,
    REFLECT: tl.constexpr,
    TRANSPOSED: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    ACTIVATION: tl.constexpr,
    WRITE_MOMENTS: tl.constexpr,
    IEEE: tl.constexpr,
    DOT_IN_FP32: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    pid_m, pid_n = tl.program_id(0), tl.program_id(1)
    n = pid_m // n_m_tiles
    m_tile = pid_m % n_m_tiles
    m = m_tile * BLOCK_M + tl.arange(0, BLOCK_M)
    m_mask = m < OH * OW
    oh = m // OW
    ow = m % OW
    co = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    co_mask = co < C_out
    # Offsets inside one image fit in int32 (the launcher checks): 64-bit only for the image's base.
    x_image = x_ptr + n.to(tl.int64) * sx_n

    acc = tl.zeros([BLOCK_M, BLOCK_N], tl.float32)
    for tap in range(0, KH * KW):
        kh = tap // KW
        kw = tap % KW
        ih, h_ok = _source_index(oh, kh, H, STRIDE, PAD, REFLECT, TRANSPOSED)
        iw, w_ok = _source_index(ow, kw, W, STRIDE, PAD, REFLECT, TRANSPOSED)
        pixel = ih * sx_h + iw * sx_w
        row_ok = m_mask & h_ok & w_ok
        w_tap = w_ptr + kh * sw_h + kw * sw_w
        for c0 in range(0, C_in, BLOCK_K):
            ci = c0 + tl.arange(0, BLOCK_K)
            ci_mask = ci < C_in
            a = tl.load(
                x_image + pixel[:, None] + ci[None, :] * sx_c, mask=row_ok[:, None] & ci_mask[None, :], other=0.0
            )
            b = tl.load(
                w_tap + ci[:, None] * sw_ci + co[None, :] * sw_co, mask=ci_mask[:, None] & co_mask[None, :], other=0.0
            )
            if DOT_IN_FP32:
                acc = tl.dot(a.to(tl.float32), b.to(tl.float32), acc, input_precision="ieee")
            elif IEEE:
                acc = tl.dot(a, b, acc, input_precision="ieee")
            else:
                acc = tl.dot(a, b, acc)

    if HAS_BIAS:
        acc += tl.load(b_ptr + co, mask=co_mask, other=0.0).to(tl.float32)[None, :]
    acc = apply_activation(acc, ACTIVATION, negative_slope)
    if WRITE_MOMENTS:
        valid = m_mask[:, None] & co_mask[None, :]
        count = tl.sum(valid.to(tl.float32), axis=0)
        mean = tl.sum(tl.where(valid, acc, 0.0), axis=0) / tl.maximum(count, 1.0)
        centered = tl.where(valid, acc - mean[None, :], 0.0)
        store_moments(
            partial_ptr, n, co, co_mask, C_out, m_tile, n_m_tiles, mean, tl.sum(centered * centered, axis=0), count
        )

    y_offsets = co[None, :] * sy_c + oh[:, None] * sy_h + ow[:, None] * sy_w
    tl.store(
        y_ptr + n.to(tl.int64) * sy_n + y_offsets,
        acc.to(y_ptr.dtype.element_ty),
        mask=m_mask[:, None] & co_mask[None, :],
    )


def conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int = 1,
    padding: int = 0,
    pad_mode: str = "zeros",
    transposed: bool = False,
    output_padding: int = 0,
    activation: str = "none",
    negative_slope: float = 0.2,
    with_moments: bool = False,
    tile: ConvTile | None = None,
) -> tuple[torch.Tensor, tuple[torch.Tensor, int] | None]:
    """Convolution (or transposed convolution) of NCHW `x`; returns (y, moments) where
    moments = (buffer [N, C_out, tiles, 3], tiles) for kernels.instance_norm, or None.

    `weight` is [C_out, C_in, KH, KW] (conv) or [C_in, C_out, KH, KW] (transposed), as torch.
    The output keeps the input's memory format. `tile` defaults to the untuned first candidate.
    """
    if pad_mode not in ("zeros", "reflect"):
        raise ValueError(f"pad_mode must be zeros or reflect, not {pad_mode}")
    if transposed and pad_mode != "zeros":
        raise ValueError("transposed convolution supports zero padding only")
    n, c_in, h, w = x.shape
    if transposed:
        w_ci, c_out, kh, kw = weight.shape
        oh = (h - 1) * stride - 2 * padding + kh + output_padding
        ow = (w - 1) * stride - 2 * padding + kw + output_padding
        sw_ci, sw_co = weight.stride(0), weight.stride(1)
    else:
        c_out, w_ci, kh, kw = weight.shape
        oh = (h + 2 * padding - kh) // stride + 1
        ow = (w + 2 * padding - kw) // stride + 1
        sw_co, sw_ci = weight.stride(0), weight.stride(1)
        if pad_mode == "reflect" and padding >= min(h, w):
            raise ValueError(f"reflection padding {padding} needs an input larger than {h}x{w}")
    if w_ci != c_in:
        raise ValueError(f"weight expects {w_ci} input channels, input has {c_in} (grouped conv is not supported)")
    if max(c_in * h * w, c_out * oh * ow) >= 2**31:
        raise ValueError(f"one image of {c_in}x{h}x{w} → {c_out}x{oh}x{ow} is too large for 32-bit offsets")
    tile = tile or candidate_tiles(x.dtype, c_in, c_out)[0]
    memory_format = (
        torch.channels_last
        if x.is_contiguous(memory_format=torch.channels_last) and c_in > 1
        else torch.contiguous_format
    )
    y = torch.empty((n, c_out, oh, ow), device=x.device, dtype=x.dtype, memory_format=memory_format)
    n_m_tiles = triton.cdiv(oh * ow, tile.block_m)
    moments = torch.empty((n, c_out, n_m_tiles, 3), device=x.device, dtype=torch.float32) if with_moments else y
    grid = (n * n_m_tiles, triton.cdiv(c_out, tile.block_n))
    conv2d_kernel[grid](
        x,
        weight,
        bias if bias is not None else weight,
        y,
        moments,
        c_in,
        h,
        w,
        c_out,
        oh,
        ow,
        *x.stride(),
        sw_co,
        sw_ci,
        weight.stride(2),
        weight.stride(3),
        *y.stride(),
        n_m_tiles,
        negative_slope,
        KH=kh,
        KW=kw,
        STRIDE=stride,
        PAD=padding,
        REFLECT=pad_mode == "reflect",
        TRANSPOSED=transposed,
        HAS_BIAS=bias is not None,
        ACTIVATION=ACTIVATION_CODES[activation],
        WRITE_MOMENTS=with_moments,
        IEEE=x.dtype == torch.float32,
        # Triton's CPU interpreter multiplies bf16 bit patterns as integers; only there, widen first.
        DOT_IN_FP32=x.dtype == torch.bfloat16 and triton.knobs.runtime.interpret,
        BLOCK_M=tile.block_m,
        BLOCK_N=tile.block_n,
        BLOCK_K=tile.block_k,
        num_warps=tile.num_warps,
        num_stages=tile.num_stages,
    )
    return y, ((moments, n_m_tiles) if with_moments else None)
