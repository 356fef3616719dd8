"""Turn generators trained elsewhere into i2i run directories.

Supported: the CycleGAN/pix2pix repository (`latest_net_G_A.pth`: ResNet and U-Net
generators), the CUT repository (`latest_net_G.pth`: ResNet generators, anti-aliased or
not) and JoliGEN (`latest_net_G_A.pth`: its default attention generators resnet_attn and
mobile_resnet_attn). Their parameter names and layer order are those of i2i's own networks,
so a checkpoint loads unchanged once the architecture is known; it is inferred from the
tensor shapes and names, and for JoliGEN from the train_config.json it writes beside its
checkpoints (padding, input masks, the twice-applied residual blocks of older versions).
Checkpoints are read with `weights_only=True`: a pickle cannot run code here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from .config import CONFIG_FILENAME, GeneratorConfig, RunConfig, save_config
from .errors import CheckpointError, ConfigError, one_line
from .io import CHECKPOINT_PREFIX, LATEST_FILENAME, checkpoint_folders, save_checkpoint
from .nets import build_generator
from .outputs import RUN_PART, claim_folder, refuse_writing_inputs

# cycle_gan: the spelling of `i2i train --model`, accepted for the CycleGAN repository too.
SOURCE_ALIASES = {"cycle_gan": "cyclegan"}
SOURCES = ("cyclegan", "cut", "joligen", *SOURCE_ALIASES)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a .pth checkpoint, without DataParallel prefixes or the instance-norm
    running statistics that PyTorch < 0.4 saved (and the CycleGAN code strips on load)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file; pass the .pth generator checkpoint")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come in many types
        raise CheckpointError(f"{path}: {_load_failure(exc)}", detail=f"{type(exc).__name__}: {exc}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise CheckpointError(f"{path}: expected a generator state_dict (name → tensor)")
    cleaned = {}
    for name, tensor in state.items():
        name = name.removeprefix("module.")
        if name.endswith(("running_mean", "running_var", "num_batches_tracked")) and not _is_batch_norm(state, name):
            continue
        cleaned[name] = tensor
    return cleaned


def _load_failure(exc: Exception) -> str:
    """Why torch.load refused a file, in a user's terms (torch's own text goes to --verbose)."""
    text = str(exc)
    if "Unsupported global" in text:  # a well-formed pickle naming classes; random bytes fail earlier
        return (
            "this file holds pickled Python objects (a whole module or a training state), which i2i does not "
            "unpickle because that can run code; save `net.state_dict()` with torch.save and import that file"
        )
    return "not a PyTorch checkpoint (truncated, or another format); re-download it or save it with torch.save"


def _is_batch_norm(state: dict, name: str) -> bool:
    prefix = name.rsplit(".", 1)[0]
    return f"{prefix}.weight" in state or f"module.{prefix}.weight" in state


def infer_generator(state: dict[str, torch.Tensor]) -> tuple[GeneratorConfig, int, int]:
    """(generator config, input channels, output channels) from a state dict's names and shapes."""
    uses_batch_norm = any(name.endswith("running_mean") for name in state)
    norm = "batch" if uses_batch_norm else "instance"
    if "model.model.0.weight" in state:  # U-Net: nested skip blocks
        depth = max(name.count("model.") for name in state) - 1
        first, last = state["model.model.0.weight"], state["model.model.3.weight"]
        net = {7: "unet_128", 8: "unet_256"}.get(depth)
        if net is None:
            raise ConfigError(f"U-Net with {depth} levels is not one of unet_128 (7) / unet_256 (8)")
        # U-Net dropout sits after all weights of its block: invisible here and a no-op at inference.
        return GeneratorConfig(net, ngf=first.shape[0], norm=norm), first.shape[1], last.shape[1]
    if "model.1.weight" not in state:
        raise ConfigError(
            "unrecognized generator: neither a ResNet (model.1.weight) nor a U-Net (model.model.0.weight)"
        )
    first = state["model.1.weight"]
    blocks = {int(m.group(1)) for name in state if (m := re.match(r"model\.(\d+)\.conv_block\.", name))}
    last_index = max(int(m.group(1)) for name in state if (m := re.match(r"model\.(\d+)\.weight$", name)))
    antialias = "model.7.filt" in state
    blur_up = any(name.endswith(".filt") and state[name].shape[-1] == 4 for name in state)
    if len(blocks) not in (6, 9):
        raise ConfigError(f"ResNet generator with {len(blocks)} blocks; i2i builds 6 or 9")
    dropout = any(".conv_block.6.weight" in name for name in state)
    net = f"resnet_{len(blocks)}blocks"
    spec = GeneratorConfig(
        net,
        ngf=first.shape[0],
        norm=norm,
        dropout=dropout,
        antialias=antialias,
        upsample="blur" if blur_up else "transpose",
    )
    return spec, first.shape[1], state[f"model.{last_index}.weight"].shape[0]


def joligen_options(checkpoint: Path) -> dict:
    """The `G` options of the JoliGEN train_config.json beside `checkpoint` ({} when absent),
    refusing what i2i cannot reproduce."""
    path = Path(checkpoint).parent / CONFIG_FILENAME
    if not path.is_file():
        return {}
    try:
        options = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(
            f"{path}: unreadable JoliGEN config ({exc}); fix or move it away to infer from the tensors"
        ) from None
    if not isinstance(options, dict) or not isinstance(options.get("G", {}), dict):
        raise ConfigError(
            f"{path}: not a JoliGEN train_config.json (no G section); move it away to infer from the tensors"
        )
    if (options.get("train") or {}).get("feat_wavelet"):
        raise ConfigError(f"{path}: train.feat_wavelet (Haar-wavelet generators) is not supported by i2i import")
    return options.get("G", {}) | {"output_nc": (options.get("model") or {}).get("output_nc")}


def infer_joligen_generator(state: dict[str, torch.Tensor], options: dict) -> tuple[GeneratorConfig, int, int]:
    """(generator config, input channels, output channels) of a JoliGEN attention generator."""
    if "conv1.weight" not in state or "deconv3_attention.weight" not in state:
        raise ConfigError(
            "not a JoliGEN attention generator (no conv1 / deconv3_attention tensors); "
            "i2i imports JoliGEN's resnet_attn and mobile_resnet_attn"
        )
    first, content = state["conv1.weight"], state["deconv3_content.weight"]
    input_nc, masks = first.shape[1], state["deconv3_attention.weight"].shape[0]
    output_nc = options.get("output_nc") or input_nc
    generated, remainder = divmod(content.shape[0], output_nc)
    input_masks = options.get("attn_nb_mask_input", masks - generated)
    if remainder or masks - input_masks != generated:
        raise ConfigError(
            f"deconv3_content has {content.shape[0]} channels, not {output_nc} × (masks {masks} − "
            f"input masks {input_masks}); pass the run's train_config.json beside the checkpoint"
        )
    mobile = "resnet_blocks.0.conv1.conv.0.weight" in state
    blocks = len({m.group(1) for name in state if (m := re.match(r"resnet_blocks\.(\d+)\.", name))})
    spec = GeneratorConfig(
        "mobile_resnet_attn" if mobile else "resnet_attn",
        ngf=first.shape[0],
        attn_blocks=blocks,
        attn_masks=masks,
        attn_input_masks=input_masks,
        padding_type=options.get("padding_type", "reflect"),
        twice_resnet_blocks=bool(options.get("backward_compatibility_twice_resnet_blocks", False)),
    )
    return spec, input_nc, output_nc


def import_generator(
    checkpoint: Path, source: str, run_dir: Path, net_g: str | None = None, direction: str = "AtoB"
) -> RunConfig:
    """Write `run_dir` (train_config.json + a safetensors checkpoint) holding the generator
    of `checkpoint` as the `direction` generator; returns the run's config."""
    if source not in SOURCES:
        raise ConfigError(f"--from {source}: supported sources are {', '.join(SOURCES)}")
    source = SOURCE_ALIASES.get(source, source)
    run_dir = Path(run_dir)
    _refuse_existing_run(run_dir)
    checkpoints = run_dir / "checkpoints"
    # the checkpoint folder written is replaced whole, and the older ones are rotated away
    written = [run_dir / CONFIG_FILENAME, checkpoints / LATEST_FILENAME, checkpoints / f"{CHECKPOINT_PREFIX}000000"]
    read = [checkpoint, Path(checkpoint).parent / CONFIG_FILENAME]  # JoliGEN's config beside its checkpoint
    refuse_writing_inputs([*written, *checkpoint_folders(checkpoints)], read)
    state = read_state_dict(checkpoint)
    try:  # the names and shapes the inference reads may be missing or of another rank
        if source == "joligen":
            spec, input_nc, output_nc = infer_joligen_generator(state, joligen_options(checkpoint))
        else:
            spec, input_nc, output_nc = infer_generator(state)
    except ConfigError as exc:
        raise ConfigError(f"{checkpoint}: {exc}") from None
    except (KeyError, IndexError, ValueError) as exc:
        raise CheckpointError(
            f"{checkpoint}: not a complete {source} generator (tensor {one_line(exc)} missing or of another "
            "shape); import the generator's own state_dict"
        ) from None
    if net_g is not None and net_g != spec.netG:
        raise ConfigError(f"{checkpoint}: its tensors describe a {spec.netG}, not the --netG {net_g} given")
    config = RunConfig()
    config.G = spec
    config.data.input_nc, config.data.output_nc = (
        (input_nc, output_nc) if direction == "AtoB" else (output_nc, input_nc)
    )
    config.data.dataroot = ""
    try:
        config.validate()  # before building: a width or channel count read from a damaged tensor
    except ConfigError as exc:
        raise CheckpointError(f"{checkpoint}: its tensors describe no generator i2i builds ({exc})") from None
    net = build_generator(spec, input_nc, output_nc)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(
            f"{checkpoint}: does not match an i2i {spec.netG} ({str(exc).splitlines()[1].strip()[:200]})"
        ) from None
    name = "G_A" if direction == "AtoB" else "G_B"
    with claim_folder(run_dir, RUN_PART, nested=True):
        _refuse_existing_run(run_dir)  # again: another import may have finished since
        save_checkpoint(
            run_dir / "checkpoints",
            0,
            {name: net.state_dict()},
            {"step": 0, "imported_from": str(Path(checkpoint).resolve()), "source": source},
            keep=1,
        )
        save_config(config, run_dir)
    return config


def _refuse_existing_run(run_dir: Path) -> None:
    if (run_dir / CONFIG_FILENAME).exists():
        raise ConfigError(f"{run_dir} already holds a run; pick another --out")
