"""Tiled inference for images too large to translate in one piece, without seams.

Instance norm makes a generator's output depend on statistics of the whole image, so
translating tiles independently shifts tone from tile to tile. `TiledGenerator` keeps the
whole-image statistics: for each instance-norm call, in forward order, it runs every tile up
to that call (earlier calls normalized with the statistics already gathered), sums the call's
input over the tile's core in float64, and freezes the resulting mean and variance. The pass
in which no call is left to gather is the translation itself.

Tiles are cores of `tile − 2·overlap` pixels grown by `overlap` on each side (clamped at the
image border). Outputs are blended with linear ramps over a band of `overlap` pixels centred on
each core boundary, so every tile contributes only pixels at least overlap/2 from its edge:
with overlap/2 at least the generator's receptive-field radius the result equals untiled
inference up to float rounding, and with less the band hides what differs.

Cost: gathering the statistics of L norm calls runs about L/2 untiled passes (23 calls for
ResNet-9, so ~12×); `stats="tile"` skips it (one pass, each tile normalized by its own
statistics: faster, with tone shifts between tiles that only the blend softens).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from i2i.errors import ConfigError
from i2i.nets.warp import AffineWarp

TILE_STATS = ("exact", "tile")


@dataclass(frozen=True)
class Tile:
    window: tuple[int, int, int, int]  # y0, y1, x0, x1 of the input the generator sees
    core: tuple[int, int, int, int]  # the part of it this tile is responsible for


def _spans(length: int, core: int, overlap: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    spans = []
    for start in range(0, length, core):
        end = min(start + core, length)
        spans.append(((max(0, start - overlap), min(length, end + overlap)), (start, end)))
    return spans


def plan_tiles(height: int, width: int, tile: int, overlap: int) -> list[Tile]:
    core = tile - 2 * overlap
    return [
        Tile((wy[0], wy[1], wx[0], wx[1]), (cy[0], cy[1], cx[0], cx[1]))
        for wy, cy in _spans(height, core, overlap)
        for wx, cx in _spans(width, core, overlap)
    ]


def _blend_weights(length: int, window: tuple[int, int], core: tuple[int, int], overlap: int) -> np.ndarray:
    """Weights of one tile along one axis over its window: 1 inside the core, ramping to 0
    across the band of `overlap` pixels centred on each core boundary inside the image (the
    neighbour's ramp is the complement; where bands meet, cores narrower than the overlap,
    the blend divides by the summed weights)."""
    positions = np.arange(window[0], window[1]) + 0.5
    weights = np.ones(len(positions))
    half = overlap / 2
    if core[0] > 0:
        weights *= np.clip((positions - (core[0] - half)) / overlap, 0, 1) if overlap else positions >= core[0]
    if core[1] < length:
        weights *= np.clip(((core[1] + half) - positions) / overlap, 0, 1) if overlap else positions < core[1]
    return weights.astype(np.float32)


class _StopForward(Exception):
    """Raised by the statistics hook once the call being gathered has been summed."""


class TiledGenerator:
    """Calls `net` on NCHW float batches in [-1, 1] (kept on the host) tile by tile on
    `device`; images that fit in one tile run whole."""

    def __init__(
        self,
        net: nn.Module,
        tile: int,
        overlap: int,
        size_multiple: int,
        device: torch.device,
        dtype: torch.dtype,
        stats: str = "exact",
    ):
        if stats not in TILE_STATS:
            raise ConfigError(f"tile statistics '{stats}' must be one of {', '.join(TILE_STATS)}")
        if tile % size_multiple or overlap % size_multiple or overlap < 0:
            raise ConfigError(
                f"--tile {tile} and --overlap {overlap} must be multiples of this generator's size "
                f"multiple {size_multiple}"
            )
        if any(isinstance(m, AffineWarp) for m in net.modules()):
            raise ConfigError(
                "this generator warps the whole image first (G.affine_warp), so tiles cannot be "
                "translated apart; run without --tile"
            )
        if tile - 2 * overlap < size_multiple:
            raise ConfigError(
                f"--tile {tile} leaves no core after two overlaps of {overlap}; use a larger tile or a smaller overlap"
            )
        self.net, self.tile, self.overlap, self.stats = net, tile, overlap, stats
        self.device, self.dtype = device, dtype
        self.norms = [m for m in net.modules() if isinstance(m, nn.InstanceNorm2d)]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if max(x.shape[2:]) <= self.tile:
            return self._run(x).cpu()
        return torch.cat([self._tiled(image[None]) for image in x])

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.to(self.device, self.dtype))

    def _tiled(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[2:]
        tiles = plan_tiles(height, width, self.tile, self.overlap)
        frozen: list[tuple[torch.Tensor, torch.Tensor]] = []
        gather = 0 if self.stats == "exact" else None
        state = {"call": 0, "tile": tiles[0], "sums": None}

        def hook(module: nn.InstanceNorm2d, inputs: tuple[torch.Tensor, ...], output: torch.Tensor):
            index, feature = state["call"], inputs[0]
            state["call"] += 1
            if index < len(frozen):
                mean, var = (t.to(feature.device, feature.dtype)[None, :, None, None] for t in frozen[index])
                y = (feature - mean) * torch.rsqrt(var + module.eps)
                if module.affine:
                    y = y * module.weight[None, :, None, None] + module.bias[None, :, None, None]
                return y
            if index == gather:
                self._accumulate(state, feature)
                raise _StopForward
            return output

        handles = [norm.register_forward_hook(hook) for norm in self.norms]
        try:
            while True:
                state["sums"] = None
                output = weights = None
                for tile in tiles:
                    state["call"], state["tile"] = 0, tile
                    y0, y1, x0, x1 = tile.window
                    try:
                        result = self._run(image[:, :, y0:y1, x0:x1]).float().cpu()
                    except _StopForward:
                        continue
                    output, weights = self._blend(output, weights, result, tile, height, width)
                if state["sums"] is None:
                    return output / weights
                total, squares, count = state["sums"]
                mean = total / count
                frozen.append((mean.float(), (squares / count - mean * mean).clamp_min(0).float()))
                gather += 1
        finally:
            for handle in handles:
                handle.remove()

    def _accumulate(self, state: dict, feature: torch.Tensor) -> None:
        tile: Tile = state["tile"]
        y0, y1, x0, x1 = tile.window
        scale = (y1 - y0) // feature.shape[2]
        cy0, cy1, cx0, cx1 = ((c - o) // scale for c, o in zip(tile.core, (y0, y0, x0, x0)))
        core = feature[0, :, cy0:cy1, cx0:cx1].double()
        sums = (core.sum((1, 2)).cpu(), (core * core).sum((1, 2)).cpu(), core[0].numel())
        state["sums"] = sums if state["sums"] is None else tuple(a + b for a, b in zip(state["sums"], sums))

    def _blend(
        self,
        output: torch.Tensor | None,
        weights: torch.Tensor | None,
        result: torch.Tensor,
        tile: Tile,
        height: int,
        width: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if output is None:
            output, weights = torch.zeros(1, result.shape[1], height, width), torch.zeros(height, width)
        y0, y1, x0, x1 = tile.window
        weight = torch.from_numpy(
            np.outer(
                _blend_weights(height, (y0, y1), tile.core[:2], self.overlap),
                _blend_weights(width, (x0, x1), tile.core[2:], self.overlap),
            )
        )
        output[:, :, y0:y1, x0:x1] += result * weight
        weights[y0:y1, x0:x1] += weight
        return output, weights
