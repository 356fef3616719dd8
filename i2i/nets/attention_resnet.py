"""JoliGEN's attention ResNet generators (`resnet_attn`, `mobile_resnet_attn`, its defaults).

An encoder (c7s1, two stride-2 convs, n residual blocks) feeds two decoders: a content
decoder drawing K = masks − input_masks candidate images (tanh), and an attention decoder
giving a softmax over `masks` planes per pixel. The output is Σ_k image_k · attention_k plus
input · attention_j for the `input_masks` remaining planes, so the network can copy input
pixels unchanged where nothing should move.

Parameter names and the order of operations follow JoliGEN's ResnetGenerator_attn
(`conv1`, `conv1_norm`, `resnet_blocks.N.conv1`, `deconv1_content`, …), so its checkpoints
load unchanged. `twice_resnet_blocks` reproduces checkpoints trained before JoliGEN fixed the
residual blocks being applied twice (its G_backward_compatibility_twice_resnet_blocks).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class SeparableConv2d(nn.Module):
    """JoliGEN's mobile conv: depthwise k×k (padding inside the conv) → instance norm → 1×1."""

    def __init__(self, channels: int, padding_mode: str):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, padding_mode=padding_mode, groups=channels),
            nn.InstanceNorm2d(channels),
            nn.Conv2d(channels, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class AttentionResnetBlock(nn.Module):
    def __init__(self, channels: int, padding_mode: str, mobile: bool):
        super().__init__()
        make = (
            (lambda: SeparableConv2d(channels, padding_mode))
            if mobile
            else (lambda: nn.Conv2d(channels, channels, 3, padding=1, padding_mode=padding_mode))
        )
        self.conv1, self.conv1_norm = make(), nn.InstanceNorm2d(channels)
        self.conv2, self.conv2_norm = make(), nn.InstanceNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2_norm(self.conv2(F.relu(self.conv1_norm(self.conv1(x)))))


class AttentionResnetGenerator(nn.Module):
    size_multiple = 4

    def __init__(
        self,
        input_nc: int,
        output_nc: int,
        ngf: int = 64,
        n_blocks: int = 9,
        masks: int = 10,
        input_masks: int = 1,
        padding_type: str = "reflect",
        mobile: bool = False,
        twice_resnet_blocks: bool = False,
    ):
        super().__init__()
        if not 0 <= input_masks < masks:
            raise ValueError(f"attention generator needs 0 <= input_masks ({input_masks}) < masks ({masks})")
        if input_masks and input_nc != output_nc:
            raise ValueError("input_masks > 0 copies input pixels, so input and output channels must match")
        self.output_nc, self.masks, self.input_masks = output_nc, masks, input_masks
        self.twice_resnet_blocks = twice_resnet_blocks
        # JoliGEN pads the 7×7 convs itself: reflect, or zeros for any other padding type.
        self.outer_pad = "reflect" if padding_type == "reflect" else "constant"
        self.conv1, self.conv1_norm = nn.Conv2d(input_nc, ngf, 7), nn.InstanceNorm2d(ngf)
        self.conv2, self.conv2_norm = nn.Conv2d(ngf, ngf * 2, 3, 2, 1), nn.InstanceNorm2d(ngf * 2)
        self.conv3, self.conv3_norm = nn.Conv2d(ngf * 2, ngf * 4, 3, 2, 1), nn.InstanceNorm2d(ngf * 4)
        self.resnet_blocks = nn.Sequential(
            *(AttentionResnetBlock(ngf * 4, padding_type, mobile) for _ in range(n_blocks))
        )
        for branch in ("content", "attention"):
            setattr(self, f"deconv1_{branch}", nn.ConvTranspose2d(ngf * 4, ngf * 2, 3, 2, 1, 1))
            setattr(self, f"deconv1_norm_{branch}", nn.InstanceNorm2d(ngf * 2))
            setattr(self, f"deconv2_{branch}", nn.ConvTranspose2d(ngf * 2, ngf, 3, 2, 1, 1))
            setattr(self, f"deconv2_norm_{branch}", nn.InstanceNorm2d(ngf))
        self.deconv3_content = nn.Conv2d(ngf, output_nc * (masks - input_masks), 7)
        self.deconv3_attention = nn.Conv2d(ngf, masks, 1)

    def _decode(self, x: torch.Tensor, branch: str) -> torch.Tensor:
        x = F.relu(getattr(self, f"deconv1_norm_{branch}")(getattr(self, f"deconv1_{branch}")(x)))
        return F.relu(getattr(self, f"deconv2_norm_{branch}")(getattr(self, f"deconv2_{branch}")(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.conv1_norm(self.conv1(F.pad(x, (3, 3, 3, 3), self.outer_pad))))
        h = F.relu(self.conv2_norm(self.conv2(h)))
        h = self.resnet_blocks(F.relu(self.conv3_norm(self.conv3(h))))
        if self.twice_resnet_blocks:
            h = self.resnet_blocks(h)
        content = self._decode(h, "content")
        images = torch.tanh(self.deconv3_content(F.pad(content, (3, 3, 3, 3), self.outer_pad)))
        attention = torch.softmax(self.deconv3_attention(self._decode(h, "attention")), dim=1)
        generated = self.masks - self.input_masks
        out = sum(
            images[:, self.output_nc * k : self.output_nc * (k + 1)] * attention[:, k : k + 1] for k in range(generated)
        )
        if self.input_masks:
            out = out + x * attention[:, generated:].sum(1, keepdim=True)
        return out
