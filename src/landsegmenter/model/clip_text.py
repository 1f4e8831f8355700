"""A plain-torch CLIP text tower and its byte-level BPE tokenizer.

The module names match open_clip / OpenAI CLIP text towers
(``token_embedding.weight``, ``positional_embedding``,
``transformer.resblocks.N.{ln_1,attn,ln_2,mlp.c_fc,mlp.c_proj}``, ``ln_final``,
``text_projection``), so a CLIP state dict (e.g. GeoRSCLIP ViT-B-32) loads from
disk without open_clip installed. The BPE vocabulary is CLIP's merges file
(``bpe_simple_vocab_16e6.txt[.gz]``), supplied by the user as a path.
"""
from __future__ import annotations

import gzip
import html
import re
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from landsegmenter.errors import LandSegError

START_TOKEN = "<|startoftext|>"
END_TOKEN = "<|endoftext|>"
# CLIP keeps 49152 - 256 - 2 merges: with 512 byte tokens and 2 specials the vocabulary has 49408 entries.
MAX_MERGES = 49152 - 256 - 2


@dataclass(frozen=True)
class ClipTextConfig:
    vocab_size: int = 49408
    context_length: int = 77
    width: int = 512
    heads: int = 8
    layers: int = 12
    embed_dim: int = 512
    quick_gelu: bool = True  # OpenAI-initialised towers (GeoRSCLIP, RemoteCLIP) use QuickGELU


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class CausalSelfAttention(nn.Module):
    """Multi-head attention with a fused ``in_proj`` (q, k, v stacked), as CLIP stores it."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [N, L, W], additive mask [L, L] -> [N, L, W]."""
        n, length, width = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)
        qkv = qkv.reshape(n, length, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=mask)
        return self.out_proj(out.transpose(1, 2).flatten(2))


class ResidualAttentionBlock(nn.Module):
    def __init__(self, width: int, heads: int, quick_gelu: bool) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = CausalSelfAttention(width, heads)
        self.ln_2 = nn.LayerNorm(width)
        activation = QuickGELU() if quick_gelu else nn.GELU()
        self.mlp = nn.Sequential(
            OrderedDict(c_fc=nn.Linear(width, 4 * width), gelu=activation, c_proj=nn.Linear(4 * width, width))
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), mask)
        return x + self.mlp(self.ln_2(x))


class ClipTransformer(nn.Module):
    def __init__(self, cfg: ClipTextConfig) -> None:
        super().__init__()
        self.resblocks = nn.ModuleList(
            ResidualAttentionBlock(cfg.width, cfg.heads, cfg.quick_gelu) for _ in range(cfg.layers)
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for block in self.resblocks:
            x = block(x, mask)
        return x


def causal_mask(length: int) -> torch.Tensor:
    """[L, L] additive mask: 0 on and below the diagonal, -inf above."""
    return torch.full((length, length), float("-inf")).triu_(1)


class ClipTextTransformer(nn.Module):
    """Token ids -> text embedding, pooled at the end-of-text token (the highest id)."""

    def __init__(self, cfg: ClipTextConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.width)
        self.positional_embedding = nn.Parameter(torch.empty(cfg.context_length, cfg.width))
        self.transformer = ClipTransformer(cfg)
        self.ln_final = nn.LayerNorm(cfg.width)
        self.text_projection = nn.Parameter(torch.empty(cfg.width, cfg.embed_dim))
        self.register_buffer("attn_mask", causal_mask(cfg.context_length), persistent=False)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        nn.init.normal_(self.text_projection, std=cfg.width**-0.5)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids [N, L] (L <= context_length, zero-padded after the end token) -> [N, embed_dim]."""
        length = ids.shape[1]
        # The mask is causal, so dropping trailing padding leaves the end-token features unchanged.
        x = self.token_embedding(ids) + self.positional_embedding[:length]
        x = self.ln_final(self.transformer(x, self.attn_mask[:length, :length]))
        pooled = x[torch.arange(ids.shape[0], device=ids.device), ids.argmax(dim=-1)]
        return pooled @ self.text_projection


def _bytes_to_unicode() -> dict[int, str]:
    """Reversible map from bytes to printable unicode characters (CLIP / GPT-2 byte-level BPE)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    codes = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, codes)))


# CLIP's word pattern with \p{L} and \p{N} spelled for the standard `re` module.
_WORD_PATTERN = re.compile(
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|(?:[^\s\w]|_)+",
    re.IGNORECASE,
)


class ClipTokenizer:
    """CLIP's lower-casing byte-level BPE tokenizer built from a merges file.

    The file is CLIP's ``bpe_simple_vocab_16e6.txt`` (optionally gzipped): a header
    line, then one merge ``"a b"`` per line. Text is cleaned with ``html.unescape``
    and whitespace collapsing (CLIP also runs ftfy, which only matters for
    mis-encoded text).
    """

    def __init__(self, merges: Sequence[tuple[str, str]]) -> None:
        self.byte_encoder = _bytes_to_unicode()
        symbols = list(self.byte_encoder.values())
        vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + [START_TOKEN, END_TOKEN]
        self.encoder = {token: i for i, token in enumerate(vocab)}
        self.ranks = {merge: i for i, merge in enumerate(merges)}
        self.sot_id = self.encoder[START_TOKEN]
        self.eot_id = self.encoder[END_TOKEN]
        self._bpe = lru_cache(maxsize=10000)(self._bpe_uncached)

    @classmethod
    def from_file(cls, path: str | Path) -> "ClipTokenizer":
        path = Path(path)
        try:
            raw = path.read_bytes()
            text = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode("utf-8")
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise LandSegError(f"cannot read CLIP BPE vocabulary {path}: {exc}") from None
        lines = text.split("\n")[1 : MAX_MERGES + 1]
        merges = [tuple(line.split()) for line in lines if line.strip()]
        if not merges or any(len(m) != 2 for m in merges):
            raise LandSegError(f"{path} is not a CLIP BPE merges file (header line, then 'a b' per line)")
        return cls(merges)

    @property
    def vocab_size(self) -> int:
        return len(self.encoder)

    def _bpe_uncached(self, token: str) -> tuple[str, ...]:
        word = [*token[:-1], token[-1] + "</w>"]
        while len(word) > 1:
            pairs = {(a, b) for a, b in zip(word, word[1:])}
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            word = _merge_pair(word, best)
        return tuple(word)

    def encode(self, text: str) -> list[int]:
        """Text -> BPE ids, without start/end tokens."""
        text = re.sub(r"\s+", " ", html.unescape(html.unescape(text))).strip().lower()
        ids: list[int] = []
        for piece in _WORD_PATTERN.findall(text):
            symbols = "".join(self.byte_encoder[b] for b in piece.encode("utf-8"))
            ids.extend(self.encoder[s] for s in self._bpe(symbols))
        return ids

    def __call__(self, texts: Sequence[str], context_length: int) -> torch.Tensor:
        """texts -> ids [N, context_length]: start, tokens, end (kept when truncating), zero padding."""
        out = torch.zeros(len(texts), context_length, dtype=torch.long)
        for row, text in enumerate(texts):
            ids = [self.sot_id, *self.encode(text), self.eot_id][:context_length]
            ids[-1] = self.eot_id
            out[row, : len(ids)] = torch.tensor(ids)
        return out


def _merge_pair(word: list[str], pair: tuple[str, str]) -> list[str]:
    merged: list[str] = []
    i = 0
    while i < len(word):
        if i < len(word) - 1 and (word[i], word[i + 1]) == pair:
            merged.append(word[i] + word[i + 1])
            i += 2
        else:
            merged.append(word[i])
            i += 1
    return merged


class ClipTextEncoder(nn.Module):
    """Texts -> L2-normalised CLIP text embeddings [N, embed_dim]."""

    def __init__(self, cfg: ClipTextConfig, tokenizer: ClipTokenizer | None = None) -> None:
        super().__init__()
        self.model = ClipTextTransformer(cfg)
        self.tokenizer = tokenizer
        if tokenizer is not None and tokenizer.vocab_size > cfg.vocab_size:
            raise LandSegError(
                f"BPE vocabulary has {tokenizer.vocab_size} tokens but the text tower only {cfg.vocab_size}"
            )

    @property
    def dim(self) -> int:
        return self.model.cfg.embed_dim

    @torch.no_grad()
    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        if self.tokenizer is None:
            raise LandSegError(
                "the CLIP text tower needs its BPE vocabulary: pass clip_vocab=<path to bpe_simple_vocab_16e6.txt.gz>"
            )
        ids = self.tokenizer(texts, self.model.cfg.context_length)
        ids = ids[:, : int((ids != 0).sum(1).max())].to(self.model.positional_embedding.device)
        return F.normalize(self.model(ids), dim=-1)


_IGNORED_KEYS = ("attn_mask", "logit_scale", "logit_bias")


def text_tower_state(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The text-tower entries of a full CLIP state dict, with wrapper prefixes removed.

    Drops ``visual.*``, ``logit_scale`` and the ``attn_mask`` buffer some exports
    carry (the mask is rebuilt); strips ``module.`` (DDP) and ``text.`` prefixes.
    """
    out = {}
    for key, value in state.items():
        key = key.removeprefix("module.").removeprefix("text.")
        if key.startswith("visual.") or key in _IGNORED_KEYS:
            continue
        out[key] = value
    return out


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors from a ``.safetensors`` file or a torch checkpoint (loaded with ``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise LandSegError(f"CLIP weights not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise LandSegError(f"cannot read CLIP weights {path}: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise LandSegError(f"{path} does not hold a state dict")
    return state


def config_from_state(
    state: Mapping[str, torch.Tensor], heads: int | None = None, quick_gelu: bool = True
) -> ClipTextConfig:
    """Infer the text-tower shape from its tensors; heads default to width // 64 as in CLIP."""
    state = text_tower_state(state)
    try:
        vocab_size, width = state["token_embedding.weight"].shape
        layers = len({k.split(".")[2] for k in state if k.startswith("transformer.resblocks.")})
        return ClipTextConfig(
            vocab_size=vocab_size,
            context_length=state["positional_embedding"].shape[0],
            width=width,
            heads=heads or max(width // 64, 1),
            layers=layers,
            embed_dim=state["text_projection"].shape[1],
            quick_gelu=quick_gelu,
        )
    except KeyError as exc:
        raise LandSegError(f"not a CLIP text-tower state dict: missing {exc.args[0]}") from None


def load_clip_text_weights(model: ClipTextTransformer, state: Mapping[str, torch.Tensor]) -> None:
    """Copy an open_clip/OpenAI CLIP state dict into ``model``; LandSegError on a missing key or shape."""
    state = text_tower_state(state)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    if missing:
        raise LandSegError(f"CLIP text weights lack {len(missing)} tensors, e.g. {missing[0]}")
    for name, tensor in expected.items():
        if state[name].shape != tensor.shape:
            raise LandSegError(
                f"CLIP text tensor {name} has shape {tuple(state[name].shape)}, the model expects {tuple(tensor.shape)}"
            )
    model.load_state_dict({k: state[k].float() for k in expected})


def load_clip_text_encoder(
    cfg: ClipTextConfig, weights: str | Path | None, vocab: str | Path | None
) -> ClipTextEncoder:
    """A frozen CLIP text encoder: weights from disk (random when None), tokenizer from ``vocab``."""
    tokenizer = ClipTokenizer.from_file(vocab) if vocab is not None else None
    encoder = ClipTextEncoder(cfg, tokenizer)
    if weights is not None:
        load_clip_text_weights(encoder.model, read_state_dict(weights))
    return encoder.eval().requires_grad_(False)
