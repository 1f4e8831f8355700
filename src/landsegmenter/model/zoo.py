"""Resolving a ``--model`` argument to a ready-to-run segmenter."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import torch

from landsegmenter.errors import LandSegError
from landsegmenter.model.protocol import Segmenter

BASELINES = ("spectral-rule",)


def bundled_model_dir() -> Path:
    return Path(str(resources.files("landsegmenter.model"))) / "weights" / "default"


def load_segmenter(spec: str | Segmenter, device: str | torch.device = "cpu") -> Segmenter:
    """``"default"`` (bundled weights), ``"spectral-rule"`` (baseline), or a saved model directory."""
    if not isinstance(spec, str):
        return spec
    if spec == "spectral-rule":
        from landsegmenter.model.spectral_rule import SpectralIndexRule

        return SpectralIndexRule().to(device)
    path = bundled_model_dir() if spec == "default" else Path(spec)
    if spec == "default" and not (path / "config.yaml").is_file():
        raise LandSegError(
            "the bundled default model is not included in this installation; "
            "pass --model spectral-rule or --model PATH to a trained model directory"
        )
    if not path.exists():
        raise LandSegError(f"no such model: {spec} (use 'default', 'spectral-rule' or a model directory)")
    from landsegmenter.model.io import load_model, read_model_config

    model = load_model(path)
    meta = read_model_config(path)
    model.fingerprint = f"{meta['preset']}:{meta['weights_sha256'][:16]}"  # identifies the weights for --resume
    model.weights_sha256 = meta["weights_sha256"]
    return model.to(device).eval()


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise LandSegError(f"unknown device {device!r}: use cpu, cuda, cuda:N or auto") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise LandSegError(f"device {device!r} requested but no CUDA GPU is available")
    return dev
