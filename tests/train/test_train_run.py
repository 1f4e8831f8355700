"""End to end: ``landseg train`` / ``finetune`` on a real store, checkpoints, resume, and refusals."""
from __future__ import annotations

import dataclasses
import hashlib

import pytest
import rasterio
import torch
from lightning.pytorch.callbacks import Callback

from landsegmenter.cli import main
from landsegmenter.model.io import load_model, save_model
from landsegmenter.model.presets import build_model
from landsegmenter.train import train
from landsegmenter.train.checkpoint import TRAINER_STATE

from .conftest import PORTO


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class StopAt(Callback):
    """Stops training after ``step`` steps, as an interrupted run would."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step >= self.step:
            trainer.should_stop = True


def test_train_writes_checkpoints_the_mapper_can_use(tiny_config, write_config, tmp_path, shared_data, capsys):
    config = write_config(tiny_config())
    out = tmp_path / "run"
    assert main(["train", "--config", str(config), "--output", str(out), "--max-steps", "3"]) == 0
    assert "trained 3 steps" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-000002", "step-000003"]
    model = load_model(out / "model", preset="tiny")
    state = torch.load(out / "checkpoints" / "step-000003" / TRAINER_STATE, weights_only=True)
    assert state["global_step"] == 3 and state["optimizer_states"]
    header = (out / "logs" / "version_0" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train/loss", "val/loss", "val/acc", "val/decoder_acc", "val/miou", "val/miou/dw"} <= set(header)
    checkpoint = load_model(out / "checkpoints" / "step-000003")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), checkpoint.state_dict().values()))

    scene = shared_data / PORTO / "s2_l2a_12band_10m.tif"
    maps = tmp_path / "map"
    assert main(["map", str(scene), "--classes", "forest,water,village", "--model", str(out / "model"),
                 "--sensor", "sentinel2_l2a_pb04", "--tile-size", "128", "-o", str(maps), "--quiet"]) == 0
    with rasterio.open(maps / "classes.tif") as src:
        assert src.shape == (237, 247) and set(src.read(1).ravel().tolist()) <= {0, 1, 2}

    before = digest(out / "model" / "model.safetensors")
    assert main(["train", "--config", str(config), "--output", str(out), "--max-steps", "1", "--quiet"]) == 2
    assert "already holds a training run; pass --resume" in capsys.readouterr().err
    assert digest(out / "model" / "model.safetensors") == before
    assert main(["train", "--config", str(config), "--output", str(out), "--max-steps", "1", "--quiet",
                 "--overwrite"]) == 0
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-000001"]


def test_resume_from_a_mid_run_checkpoint_repeats_an_uninterrupted_run(tiny_config, tmp_path):
    cfg = tiny_config(trainer={"max_steps": 5, "checkpoint_every": 2})
    full = train(cfg, output=tmp_path / "full", quiet=True)
    cut = train(cfg, output=tmp_path / "cut", quiet=True, callbacks=[StopAt(3)])
    assert cut.steps == 3  # checkpoints at steps 2 and 3
    (tmp_path / "cut" / "checkpoints" / "step-000003").rename(tmp_path / "cut" / "step-000003")  # lose the last
    resumed = train(cfg, output=tmp_path / "cut", resume=True, quiet=True)
    assert resumed.steps == 5 and full.steps == 5
    a, b = load_model(full.model_dir).state_dict(), load_model(resumed.model_dir).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.metrics["val/loss"] == full.metrics["val/loss"]
    initial = build_model("tiny").state_dict()
    assert any(not torch.equal(a[k], initial[k]) for k in a)  # it did train


def test_mixed_batches_train(tiny_config, tmp_path):
    cfg = tiny_config(data={"batching": "mixed", "batch_size": 3}, trainer={"max_steps": 2, "val_every": 0})
    result = train(cfg, output=tmp_path / "mixed", quiet=True)
    assert result.steps == 2 and torch.isfinite(torch.tensor(result.metrics["train/loss"]))


def test_resume_refuses_corrupt_checkpoints_and_changed_configs(tiny_config, write_config, tmp_path, capsys):
    cfg = tiny_config(trainer={"max_steps": 2, "val_every": 0})
    config = write_config(cfg)
    out = tmp_path / "run"
    assert main(["train", "--config", str(config), "--output", str(out), "--quiet"]) == 0
    weights = out / "checkpoints" / "step-000002" / "model.safetensors"
    corrupt = bytearray(weights.read_bytes())
    corrupt[-1] ^= 0xFF
    weights.write_bytes(bytes(corrupt))
    before = {p: digest(p) for p in out.rglob("*") if p.is_file()}
    assert main(["train", "--config", str(config), "--output", str(out), "--resume", "--max-steps", "3",
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("landseg: error: ") and err.count("\n") == 1 and "corrupt or was modified" in err
    assert {p: digest(p) for p in out.rglob("*") if p.is_file()} == before

    changed = write_config(dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, lr=0.5)), "changed.yaml")
    assert main(["train", "--config", str(changed), "--output", str(out), "--resume", "--quiet"]) == 2
    assert "different configuration (optim.lr: 0.001 -> 0.5)" in capsys.readouterr().err
    assert main(["train", "--config", str(config), "--output", str(tmp_path / "new"), "--resume", "--quiet"]) == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_finetune_starts_from_init_and_checks_it(tiny_config, write_config, tmp_path, capsys):
    torch.manual_seed(1)
    init = save_model(build_model("tiny"), tmp_path / "init")
    config = write_config(tiny_config(model={"preset": None}, trainer={"max_steps": 1, "val_every": 0}))
    out = tmp_path / "tuned"
    assert main(["finetune", "--config", str(config), "--init", str(init), "--output", str(out), "--quiet"]) == 0
    tuned, start = load_model(out / "model").state_dict(), load_model(init).state_dict()
    changed = [k for k in tuned if not torch.equal(tuned[k], start[k])]
    assert changed and len(changed) < len(tuned)  # trained from the init weights, text encoder untouched

    other = write_config(tiny_config(model={"preset": "default"}), "other.yaml")
    assert main(["finetune", "--config", str(other), "--init", str(init), "--output", str(tmp_path / "x"),
                 "--quiet"]) == 2
    assert "holds a 'tiny' model, not a 'default' one" in capsys.readouterr().err
    assert main(["finetune", "--config", str(config), "--init", str(tmp_path / "nope"), "--output",
                 str(tmp_path / "y"), "--quiet"]) == 2
    assert "no such model" in capsys.readouterr().err
    assert main(["finetune", "--config", str(config), "--output", str(tmp_path / "z"), "--quiet"]) == 2
    assert "pass --init default or --init DIR" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_best_validation_weights_are_published_and_patience_stops(tiny_config, tmp_path, monkeypatch):
    import json
    import math

    from landsegmenter.errors import LandSegError

    from landsegmenter.train.loop import BestValidation

    scores = {1: 0.2, 2: 0.5, 3: 0.3, 4: 0.1, 5: 0.05, 6: 0.04}  # by step, so the best step is known
    monkeypatch.setattr(BestValidation, "score", classmethod(lambda cls, trainer: scores[trainer.global_step]))

    class KeepWeights(Callback):
        def on_validation_end(self, trainer, pl_module):
            if trainer.global_step == 2:
                self.weights = {k: v.clone() for k, v in pl_module.model.state_dict().items()}

    cfg = tiny_config(trainer={"max_steps": 6, "val_every": 1, "val_batches": 1, "checkpoint_every": 0,
                               "publish": "best", "patience": 2},
                      data={"normalisation": "reflectance"})
    score = KeepWeights()
    result = train(cfg, output=tmp_path / "run", callbacks=[score])
    assert result.steps == 4  # steps 3 and 4 did not beat step 2: stopped after the second
    assert json.loads((tmp_path / "run" / "best.json").read_text()) == {"step": 2, "val/miou": pytest.approx(0.5)}
    published = load_model(tmp_path / "run" / "model")
    assert published.normalisation == "reflectance" and not math.isnan(sum(v.sum() for v in score.weights.values()))
    assert all(torch.equal(published.state_dict()[k], v) for k, v in score.weights.items())
    with pytest.raises(LandSegError, match="need validation"):
        train(tiny_config(trainer={"val_every": 0, "publish": "best"}), output=tmp_path / "other")
