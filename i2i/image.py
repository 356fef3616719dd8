"""The image contract every stage shares: uint8 HWC pictures ↔ float NCHW tensors in [-1, 1]
(generators end in tanh), padding to a generator's size multiple, and channel handling.

Training, export, every predictor backend and the benchmarks convert through these functions,
so a picture means the same numbers everywhere. The tensor functions use only traceable ops:
`export/` folds them into the uint8-I/O ONNX graph.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

# uint8 0..255 ↔ [-1, 1]: v / HALF_RANGE - 1 and back.
HALF_RANGE = 127.5


def to_model_input(images: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 NHWC → `dtype` NCHW in [-1, 1]; converts on the tensor's device (upload uint8:
    a quarter of the bytes of float32)."""
    return images.permute(0, 3, 1, 2).to(dtype) / HALF_RANGE - 1.0


def to_pixel_values(outputs: torch.Tensor) -> torch.Tensor:
    """Generator output, float NCHW (clamped to [-1, 1]) → float32 NHWC in [0, 255], unrounded."""
    return ((outputs.float().clamp(-1.0, 1.0) + 1.0) * HALF_RANGE).permute(0, 2, 3, 1)


def to_images(outputs: torch.Tensor) -> torch.Tensor:
    """Generator output, float NCHW → uint8 NHWC, rounded to the nearest grey level."""
    return to_pixel_values(outputs).round().to(torch.uint8)


def array_to_model_input(images: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 NHWC numpy batch (or one HWC image) → `dtype` NCHW tensor in [-1, 1] on the CPU."""
    batch = images[None] if images.ndim == 3 else images
    return to_model_input(torch.from_numpy(np.ascontiguousarray(batch)), dtype)


def to_image_arrays(outputs: torch.Tensor) -> np.ndarray:
    """Generator output, float NCHW on any device → uint8 NHWC numpy batch."""
    return to_images(outputs).cpu().numpy()


def pad_to_multiple(batch: np.ndarray, multiple: int) -> np.ndarray:
    """Pad an NHWC batch at the bottom/right so H and W are multiples of `multiple` (a power
    of two) and at least 8: the ResNet blocks reflection-pad the 1/4-size features by 1,
    which needs 2 pixels. Reflection where the image is large enough, edge copies otherwise."""
    height, width = batch.shape[1:3]
    pad_h = max(-height % multiple, 8 - height)
    pad_w = max(-width % multiple, 8 - width)
    if not pad_h and not pad_w:
        return batch
    mode = "reflect" if pad_h < height and pad_w < width else "edge"
    return np.pad(batch, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode=mode)


def to_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """uint8 HWC with 1 or 3 channels → `channels` (1 = grey by OpenCV's luma weights, 3 =
    RGB, grey repeated); other counts pass through unchanged."""
    if channels == 3 and image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    if channels == 1 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[:, :, None]
    return image


def with_constant_plane(image: np.ndarray, value: int) -> np.ndarray:
    """uint8 HWC image with one more channel of `value` (a class-conditional model's class plane)."""
    return np.concatenate([image, np.full((*image.shape[:2], 1), value, np.uint8)], 2)
