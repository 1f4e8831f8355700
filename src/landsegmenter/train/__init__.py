"""Training and fine-tuning LandSegmenter models.

``train(config)`` fits a model on a LAS store (or a labelled scene) as a YAML
config describes (:mod:`~landsegmenter.train.config`), with checkpoints and
resume; ``finetune_on_labels`` tunes a copy of a model on the sparse labels of
one scene (the transfer protocol).
"""
from landsegmenter.train.config import TrainConfig, load_config
from landsegmenter.train.finetune import finetune, finetune_on_labels
from landsegmenter.train.loop import TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "finetune", "finetune_on_labels", "load_config", "train"]
