"""Roofline of a generator: FLOPs and minimum bytes per layer, and the latency floor on a device.

    python -m i2i.benchmarks.roofline --netG resnet_9blocks --size 256 [--device-name H100] [--efficiency 0.4]

FLOPs count multiply-adds ×2 of every convolution (and the elementwise work of norms and
activations, one FLOP per element each). Minimum bytes are what each layer must at least read
and write once — weights, input and output activations — at the given precision. On a device
the floor of a layer is max(FLOPs / peak FLOP/s, bytes / bandwidth); the sum is the best any
implementation can do layer by layer. `--efficiency` (a fraction measured on a real GPU, e.g.
from benchmarks/latency.py) turns the floor into an **estimate**, labelled as such.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import torch
from torch import nn

from i2i.config import GeneratorConfig
from i2i.nets import build_generator

# Dense peak FLOP/s (tensor cores, without sparsity) for fp16 and fp32, and DRAM bandwidth,
# from the vendors' data sheets.
DEVICES = {
    "H100": {"fp16": 989e12, "fp32": 67e12, "bandwidth": 3.35e12, "note": "H100 SXM5 80 GB"},
    "A100": {"fp16": 312e12, "fp32": 19.5e12, "bandwidth": 2.04e12, "note": "A100 SXM4 80 GB"},
    "L4": {"fp16": 121e12, "fp32": 30.3e12, "bandwidth": 0.30e12, "note": "L4 24 GB"},
    "T4": {"fp16": 65e12, "fp32": 8.1e12, "bandwidth": 0.32e12, "note": "T4 16 GB"},
    "RTX4090": {"fp16": 165e12, "fp32": 82.6e12, "bandwidth": 1.01e12, "note": "GeForce RTX 4090"},
    "OrinAGX": {"fp16": 42.5e12, "fp32": 5.3e12, "bandwidth": 0.2048e12, "note": "Jetson AGX Orin 64 GB (GPU only)"},
    "OrinNX": {"fp16": 25e12, "fp32": 3.8e12, "bandwidth": 0.1024e12, "note": "Jetson Orin NX 16 GB (GPU only)"},
    "OrinNano": {"fp16": 10e12, "fp32": 1.3e12, "bandwidth": 0.068e12, "note": "Jetson Orin Nano 8 GB (GPU only)"},
}


@dataclass
class LayerCost:
    name: str
    kind: str
    flops: float
    bytes: float


def layer_costs(net: nn.Module, shape: tuple[int, int, int, int], bytes_per_element: int) -> list[LayerCost]:
    """Run one forward pass on zeros and record every leaf module's FLOPs and minimum bytes."""
    costs: list[LayerCost] = []

    def hook(module: nn.Module, inputs, output) -> None:
        x = inputs[0]
        elements_in, elements_out = x.numel(), output.numel()
        weights = sum(p.numel() for p in module.parameters(recurse=False))
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            macs_per_output = module.weight.shape[1] * module.weight[0, 0].numel()
            if isinstance(module, nn.ConvTranspose2d):  # each input pixel scatters into C_out·k² outputs
                flops = 2.0 * elements_in * module.weight.shape[1] * module.weight[0, 0].numel()
            else:
                flops = 2.0 * elements_out * macs_per_output
        else:
            flops = float(elements_out)
        costs.append(
            LayerCost(
                name, type(module).__name__, flops, float((elements_in + elements_out + weights) * bytes_per_element)
            )
        )

    handles = []
    for name, module in net.named_modules():
        if not list(module.children()):
            handles.append(module.register_forward_hook(lambda m, i, o, name=name: hook(m, i, o)))
    with torch.inference_mode():
        net(torch.zeros(shape))
    for handle in handles:
        handle.remove()
    return costs


def floor_seconds(costs: list[LayerCost], device: str, precision: str) -> float:
    spec = DEVICES[device]
    return sum(max(c.flops / spec[precision], c.bytes / spec["bandwidth"]) for c in costs)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--netG", default="resnet_9blocks")
    parser.add_argument("--ngf", type=int, default=64)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--precision", choices=("fp16", "fp32"), default="fp16")
    parser.add_argument("--device-name", choices=sorted(DEVICES), help="Only this device (default: all).")
    parser.add_argument("--efficiency", type=float, help="Measured fraction of the floor reached, for an estimate.")
    args = parser.parse_args(argv)
    print_floors(args.netG, args.ngf, args.size, args.batch, args.precision, args.device_name, args.efficiency)


def print_floors(
    net_g: str = "resnet_9blocks",
    ngf: int = 64,
    size: int = 256,
    batch: int = 1,
    precision: str = "fp16",
    device_name: str | None = None,
    efficiency: float | None = None,
) -> None:
    """Print the generator's FLOPs and traffic and its roofline floor on each device (or on
    `device_name`), with floor / `efficiency` as a labelled estimate when given."""
    net = build_generator(GeneratorConfig(net_g, ngf=ngf), 3, 3).eval()
    costs = layer_costs(net, (batch, 3, size, size), 2 if precision == "fp16" else 4)
    flops, moved = sum(c.flops for c in costs), sum(c.bytes for c in costs)
    print(
        f"{net_g} ngf {ngf}, input {batch}x3x{size}x{size}, {precision}: "
        f"{flops / 1e9:.1f} GFLOP, {moved / 1e6:.1f} MB minimum traffic over {len(costs)} layers "
        f"(arithmetic intensity {flops / moved:.0f} FLOP/B)"
    )
    print(f"{'device':<10}{'floor ms':>10}{'estimate ms':>13}  note")
    for device in [device_name] if device_name else DEVICES:
        floor = floor_seconds(costs, device, precision) * 1e3
        estimate = f"{floor / efficiency:>13.3f}" if efficiency else f"{'-':>13}"
        print(
            f"{device:<10}{floor:>10.3f}{estimate}  {DEVICES[device]['note']}"
            + ("  (ESTIMATE: floor / measured efficiency)" if efficiency else "")
        )


if __name__ == "__main__":
    main()
