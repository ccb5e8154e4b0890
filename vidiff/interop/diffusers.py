"""diffusers folders <-> vidiff's SD-layout U-Net (:mod:`vidiff.models.sd_unet`), by parameter name.

* ``UNet2DConditionModel`` folder (``config.json`` + ``diffusion_pytorch_model.safetensors``, or its
  sharded index) -> :class:`~vidiff.models.sd_unet.SDUNetConfig` fields + state dict;
* AnimateDiff ``MotionAdapter`` folder -> the ``motion_*`` fields + the motion-module state dict,
  checked against the U-Net it joins (block count, widths, layers per block);
* an inflated network's motion modules -> a ``MotionAdapter`` folder diffusers loads.

vidiff's modules carry diffusers' names, so no conversion table exists: a key either is the same
or is an error. Only safetensors are read; pickled ``.bin`` / ``.ckpt`` files are refused, never
unpickled. Nothing here imports diffusers.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from vidiff.files import save_safetensors

WEIGHTS = "diffusion_pytorch_model.safetensors"
PICKLED = (".bin", ".ckpt", ".pt", ".pth")

# UNet2DConditionModel options vidiff's SD U-Net does not implement: (key, value it must have).
UNSUPPORTED = {
    "class_embed_type": None,
    "addition_embed_type": None,
    "encoder_hid_dim": None,
    "time_embedding_type": "positional",
    "time_cond_proj_dim": None,
    "only_cross_attention": False,
    "resnet_time_scale_shift": "default",
    "act_fn": "silu",
    "mid_block_type": "UNetMidBlock2DCrossAttn",
    "downsample_padding": 1,
    "mid_block_scale_factor": 1,
    "dual_cross_attention": False,
    "num_class_embeds": None,
    "conv_in_kernel": 3,
    "conv_out_kernel": 3,
}


def read_config(folder: Path, kind: str) -> dict:
    """``folder/config.json`` as a dict; its ``_class_name`` must be ``kind``."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{folder} has no config.json (expected a diffusers {kind} folder)")
    cfg = json.loads(path.read_text())
    found = cfg.get("_class_name")
    if found != kind:
        raise ValueError(f"{folder} holds a {found!r}, expected a diffusers {kind!r}")
    return cfg


def read_weights(folder: Path) -> dict[str, torch.Tensor]:
    """The safetensors weights of a diffusers model folder (single file or sharded index)."""
    folder = Path(folder)
    single, index = folder / WEIGHTS, folder / (WEIGHTS + ".index.json")
    if single.is_file():
        return load_file(str(single))
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        state: dict[str, torch.Tensor] = {}
        for shard in shards:
            state.update(load_file(str(folder / shard)))
        return state
    pickled = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLED)
    if pickled:
        raise ValueError(
            f"{folder} holds only pickled weights ({', '.join(pickled)}); vidiff reads safetensors "
            f"only (convert them with diffusers: model.save_pretrained(dir, safe_serialization=True))"
        )
    raise FileNotFoundError(f"{folder} has no {WEIGHTS}")


def unet_config(cfg: dict) -> dict:
    """SDUNetConfig fields for a ``UNet2DConditionModel`` config (unsupported options: ValueError)."""
    for key, want in UNSUPPORTED.items():
        if key in cfg and cfg[key] != want and not (want is None and not cfg[key]):
            raise ValueError(
                f"UNet2DConditionModel option {key}={cfg[key]!r} is not supported by vidiff's SD "
                f"U-Net (supported: {want!r})"
            )
    heads = cfg.get("num_attention_heads") or cfg.get("attention_head_dim", 8)
    tlayers = cfg.get("transformer_layers_per_block", 1)
    if not isinstance(tlayers, int):
        if len(set(tlayers)) != 1:
            raise ValueError(f"transformer_layers_per_block={tlayers} must be one number")
        tlayers = tlayers[0]
    lpb = cfg.get("layers_per_block", 2)
    if not isinstance(lpb, int):
        raise ValueError(f"layers_per_block={lpb} must be one number")
    return dict(
        in_channels=cfg.get("in_channels", 4),
        out_channels=cfg.get("out_channels", 4),
        block_out_channels=list(cfg["block_out_channels"]),
        down_block_types=list(cfg["down_block_types"]),
        up_block_types=list(cfg["up_block_types"]),
        layers_per_block=lpb,
        attention_heads=heads if isinstance(heads, int) else list(heads),
        transformer_layers_per_block=tlayers,
        use_linear_projection=bool(cfg.get("use_linear_projection", False)),
        norm_num_groups=cfg.get("norm_num_groups", 32),
        norm_eps=cfg.get("norm_eps", 1e-5),
        flip_sin_to_cos=cfg.get("flip_sin_to_cos", True),
        freq_shift=cfg.get("freq_shift", 0),
        context_dim=cfg.get("cross_attention_dim", 768),
    )


def load_unet(folder: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """(SDUNetConfig fields, state dict) of a diffusers ``UNet2DConditionModel`` folder."""
    fields = unet_config(read_config(folder, "UNet2DConditionModel"))
    return fields, read_weights(folder)


def motion_config(adapter: dict, net: dict, where: Path) -> dict:
    """The ``motion_*`` SDUNetConfig fields of a ``MotionAdapter`` config joining the U-Net ``net``
    (SDUNetConfig fields); a mismatch is one ValueError naming what was expected and found."""
    ch = list(net["block_out_channels"])
    found = list(adapter.get("block_out_channels", ()))
    if len(found) != len(ch):
        raise ValueError(
            f"motion adapter {where} has {len(found)} blocks, the U-Net has {len(ch)} "
            f"(block_out_channels: adapter {found}, U-Net {ch})"
        )
    if found != ch:
        raise ValueError(
            f"motion adapter {where} has block_out_channels {found}, the U-Net has {ch}"
        )
    lpb = adapter.get("motion_layers_per_block", 2)
    if lpb != net["layers_per_block"]:
        raise ValueError(
            f"motion adapter {where} has motion_layers_per_block={lpb}, the U-Net has "
            f"layers_per_block={net['layers_per_block']}"
        )
    if adapter.get("conv_in_channels"):
        raise ValueError(f"motion adapter {where} replaces conv_in (PIA); not supported")
    layers = adapter.get("motion_transformer_layers_per_block", 1)
    mid_layers = adapter.get("motion_transformer_layers_per_mid_block", 1)
    for name, v in (("per_block", layers), ("per_mid_block", mid_layers)):
        if not isinstance(v, int) and len(set(v)) != 1:
            raise ValueError(f"motion_transformer_layers_{name}={v} must be one number")
    if adapter.get("motion_mid_block_layers_per_block", 1) != 1:
        raise ValueError("motion_mid_block_layers_per_block must be 1")
    heads = adapter.get("motion_num_attention_heads", 8)
    return dict(
        motion=True,
        motion_num_attention_heads=heads if isinstance(heads, int) else list(heads),
        motion_transformer_layers=layers if isinstance(layers, int) else layers[0],
        motion_mid_block=bool(adapter.get("use_motion_mid_block", True)),
        motion_mid_transformer_layers=mid_layers if isinstance(mid_layers, int) else mid_layers[0],
        motion_max_seq_length=adapter.get("motion_max_seq_length", 32),
    )


def load_motion_adapter(folder: Path, net: dict) -> tuple[dict, dict[str, torch.Tensor]]:
    """(``motion_*`` fields, motion-module state dict) of a ``MotionAdapter`` folder for U-Net ``net``."""
    fields = motion_config(read_config(folder, "MotionAdapter"), net, Path(folder))
    return fields, read_weights(folder)


def adapter_config(net: dict) -> dict:
    """The ``MotionAdapter`` config of an SDUNetConfig (as a dict) with motion modules."""
    heads = net["motion_num_attention_heads"]
    return {
        "_class_name": "MotionAdapter",
        "_diffusers_version": "0.30.0",
        "block_out_channels": list(net["block_out_channels"]),
        "motion_layers_per_block": net["layers_per_block"],
        "motion_transformer_layers_per_block": net["motion_transformer_layers"],
        "motion_mid_block_layers_per_block": 1,
        "motion_transformer_layers_per_mid_block": net["motion_mid_transformer_layers"],
        "motion_num_attention_heads": heads if isinstance(heads, int) else list(heads),
        # UNetMotionModel normalises motion modules with the U-Net's groups, whatever this says
        "motion_norm_num_groups": net["norm_num_groups"],
        "motion_max_seq_length": net["motion_max_seq_length"],
        "use_motion_mid_block": net["motion_mid_block"],
        "conv_in_channels": None,
    }


def save_motion_adapter(net_config: dict, motion_state: dict[str, torch.Tensor], out: Path) -> Path:
    """Write a ``MotionAdapter`` folder (config.json + safetensors) from an SD U-Net's motion weights
    (keys as in the network: ``down_blocks.0.motion_modules.0...``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in motion_state.items()}
    save_safetensors(tensors, out / WEIGHTS, metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(adapter_config(net_config), indent=2) + "\n")
    return out


__all__ = [
    "adapter_config",
    "load_motion_adapter",
    "load_unet",
    "motion_config",
    "read_config",
    "read_weights",
    "save_motion_adapter",
    "unet_config",
]
