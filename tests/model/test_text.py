"""Text side: MiniLM in plain torch, the CLIP text tower loader and tokenizer, the prompter cache."""
from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from landsegmenter.errors import LandSegError
from landsegmenter.model.bert import load_minilm, minilm_dir
from landsegmenter.model.clip_text import (
    ClipTextConfig,
    ClipTokenizer,
    config_from_state,
    load_clip_text_encoder,
)
from landsegmenter.model.text_prompter import TextPrompter

LONG_NAME = "mixed agricultural mosaic with scattered hedgerows " * 60  # ~420 word pieces, > 256
LULC_NAMES = [
    "water", "tree cover", "shrubland", "grassland", "cropland", "built-up", "bare / sparse vegetation",
    "snow and ice", "herbaceous wetland", "mangroves", "moss and lichen", "paddy field", "industrial area",
    "road", "railway", "airport", "forêt", "水体", "Ödland", "cloud shadow", LONG_NAME,
]


@pytest.fixture(scope="module")
def minilm():
    return load_minilm()


def test_minilm_matches_sentence_transformers(minilm, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(minilm_dir()), device="cpu")
    expected = torch.from_numpy(reference.encode(LULC_NAMES, batch_size=64, convert_to_numpy=True))
    ours = minilm(LULC_NAMES)
    assert ours.shape == (len(LULC_NAMES), 384)
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours.norm(dim=-1), torch.ones(len(LULC_NAMES)), atol=1e-5, rtol=0)


def test_minilm_truncates_long_names_at_max_length(minilm):
    ids, mask = minilm.tokenize([LONG_NAME, "water"])
    assert ids.shape == (2, minilm.max_seq_length) == (2, 256)
    assert ids[0, -1].item() == 102  # [SEP] kept as the last token after truncation
    assert mask[1].sum().item() == 3  # [CLS] water [SEP], the rest padding
    # The tail beyond the limit is ignored: a longer version of the name embeds identically.
    torch.testing.assert_close(minilm([LONG_NAME]), minilm([LONG_NAME + " and some more words"]))


def test_minilm_has_no_trainable_parameters(minilm):
    assert not any(p.requires_grad for p in minilm.parameters())


class CountingEncoder(nn.Module):
    """Wraps a text encoder and counts the texts it is asked to embed."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.texts_seen = 0

    @property
    def dim(self) -> int:
        return self.inner.dim

    def forward(self, texts):
        self.texts_seen += len(texts)
        return self.inner(texts)


def test_prompter_caches_per_taxonomy(minilm):
    encoder = CountingEncoder(minilm)
    prompter = TextPrompter(encoder, d_model=32, templates=("a satellite image of {}.", "{}"))
    names = ["water", "forest", "urban_area"]
    first = prompter.text_embeddings(names)
    assert encoder.texts_seen == 6
    second = prompter.text_embeddings(tuple(names))
    assert second is first and encoder.texts_seen == 6
    tokens, text = prompter(names)
    assert tokens.shape == (3, 32) and text is first and encoder.texts_seen == 6

    reordered = prompter.text_embeddings(["forest", "water", "urban_area"])
    assert encoder.texts_seen == 12  # another taxonomy: computed afresh
    torch.testing.assert_close(reordered, first[[1, 0, 2]])
    # Underscores are written as spaces in the prompts.
    per_template = F.normalize(minilm(["a satellite image of urban area.", "urban area"]), dim=-1)
    expected_urban = F.normalize(per_template.mean(0), dim=0)
    torch.testing.assert_close(first[2], expected_urban, atol=1e-6, rtol=0)

    prompter.load_state_dict(prompter.state_dict())
    prompter.text_embeddings(names)
    assert encoder.texts_seen == 18  # loading weights invalidates the cache


def test_prompter_gradients_reach_projection_only(minilm):
    prompter = TextPrompter(minilm, d_model=16)
    prompter.train()
    assert not minilm.training
    tokens, _ = prompter(["water", "forest"])
    tokens.square().sum().backward()
    assert all(p.grad is not None for p in prompter.projection.parameters())
    assert all(p.grad is None for p in minilm.parameters())


def test_taxonomy_cached_under_inference_mode_can_be_trained_on(minilm):
    prompter = TextPrompter(minilm, d_model=16)
    with torch.inference_mode():
        prompter(["water", "forest"])
    tokens, _ = prompter(["water", "forest"])  # served from the cache
    tokens.sum().backward()
    assert prompter.projection[0].weight.grad is not None


def test_prompter_rejects_template_without_slot(minilm):
    with pytest.raises(LandSegError, match="template"):
        TextPrompter(minilm, d_model=16, templates=("a satellite image",))


# --- CLIP text tower ---------------------------------------------------------

TINY_MERGES = [
    ("w", "a"), ("wa", "t"), ("e", "r</w>"), ("wat", "er</w>"),
    ("f", "o"), ("r", "e"), ("fo", "re"), ("s", "t</w>"), ("fore", "st</w>"),
]
BYTE_TOKENS = 512
SOT, EOT = BYTE_TOKENS + len(TINY_MERGES), BYTE_TOKENS + len(TINY_MERGES) + 1
TINY_CLIP = ClipTextConfig(vocab_size=EOT + 1, context_length=16, width=64, heads=4, layers=2, embed_dim=32)


@pytest.fixture()
def tiny_vocab(tmp_path):
    path = tmp_path / "bpe_tiny.txt"
    path.write_text("#version: tiny\n" + "\n".join(f"{a} {b}" for a, b in TINY_MERGES) + "\n", encoding="utf-8")
    return path


def test_clip_tokenizer_hand_computed(tiny_vocab):
    tokenizer = ClipTokenizer.from_file(tiny_vocab)
    assert tokenizer.vocab_size == TINY_CLIP.vocab_size
    # "forest" and "water" merge fully; "x" is a single byte token "x</w>" (id 256 + 87: '!' is 0).
    assert tokenizer.encode("Forest  WATER x") == [BYTE_TOKENS + 8, BYTE_TOKENS + 3, 256 + ord("x") - ord("!")]
    ids = tokenizer(["forest", "water " * 40], context_length=16)
    assert ids[0, :4].tolist() == [SOT, BYTE_TOKENS + 8, EOT, 0]
    assert ids[1].tolist() == [SOT] + [BYTE_TOKENS + 3] * 14 + [EOT]  # truncated, end token kept


def test_clip_tokenizer_rejects_non_merges_file(tmp_path):
    bad = tmp_path / "vocab.txt"
    bad.write_text("#version\nthis line has three\n")
    with pytest.raises(LandSegError, match="merges"):
        ClipTokenizer.from_file(bad)


class OpenClipStyleBlock(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            OrderedDict(c_fc=nn.Linear(width, 4 * width), gelu=nn.GELU(), c_proj=nn.Linear(4 * width, width))
        )

    def forward(self, x, mask):
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False, attn_mask=mask)[0]
        h = self.mlp.c_fc(self.ln_2(x))
        return x + self.mlp.c_proj(h * torch.sigmoid(1.702 * h))  # QuickGELU


class OpenClipStyleTextTower(nn.Module):
    """Reference text tower built on nn.MultiheadAttention, with open_clip's key names."""

    def __init__(self, cfg: ClipTextConfig) -> None:
        super().__init__()
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.width)
        self.positional_embedding = nn.Parameter(torch.randn(cfg.context_length, cfg.width) * 0.1)
        self.transformer = nn.Module()
        self.transformer.resblocks = nn.ModuleList(OpenClipStyleBlock(cfg.width, cfg.heads) for _ in range(cfg.layers))
        self.ln_final = nn.LayerNorm(cfg.width)
        self.text_projection = nn.Parameter(torch.randn(cfg.width, cfg.embed_dim) * 0.1)
        self.register_buffer("attn_mask", torch.full((cfg.context_length,) * 2, float("-inf")).triu(1))
        self.logit_scale = nn.Parameter(torch.tensor(4.6))
        for p in self.parameters():  # non-trivial biases and norms
            if p.dim() == 1:
                nn.init.normal_(p, std=0.1)

    def forward(self, ids):
        x = self.token_embedding(ids) + self.positional_embedding
        for block in self.transformer.resblocks:
            x = block(x, self.attn_mask)
        x = self.ln_final(x)
        return F.normalize(x[torch.arange(len(ids)), ids.argmax(-1)] @ self.text_projection, dim=-1)


@pytest.fixture()
def clip_state(tmp_path):
    torch.manual_seed(0)
    reference = OpenClipStyleTextTower(TINY_CLIP).eval()
    state = dict(reference.state_dict())
    state["visual.conv1.weight"] = torch.randn(8, 3, 4, 4)  # a full CLIP also has an image tower
    return reference, state


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_clip_text_tower_loads_open_clip_state_dict(clip_state, tiny_vocab, tmp_path, suffix):
    reference, state = clip_state
    path = tmp_path / f"clip{suffix}"
    if suffix == ".pt":
        torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    else:
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    cfg = config_from_state(state, heads=4)
    assert cfg == TINY_CLIP
    encoder = load_clip_text_encoder(cfg, path, tiny_vocab)
    texts = ["forest", "water", "forest water x", "water " * 30]
    with torch.no_grad():
        expected = reference(encoder.tokenizer(texts, TINY_CLIP.context_length))
    torch.testing.assert_close(encoder(texts), expected, atol=1e-5, rtol=0)
    assert not any(p.requires_grad for p in encoder.parameters())


def test_clip_text_tower_missing_or_misshaped_key(clip_state, tiny_vocab, tmp_path):
    _, state = clip_state
    path = tmp_path / "clip.pt"
    broken = {k: v for k, v in state.items() if k != "transformer.resblocks.1.mlp.c_fc.weight"}
    torch.save(broken, path)
    with pytest.raises(LandSegError, match="resblocks.1.mlp.c_fc.weight"):
        load_clip_text_encoder(TINY_CLIP, path, tiny_vocab)
    torch.save(state, path)
    with pytest.raises(LandSegError, match="shape"):
        load_clip_text_encoder(ClipTextConfig(**{**TINY_CLIP.__dict__, "width": 128}), path, tiny_vocab)
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(LandSegError, match="cannot read"):
        load_clip_text_encoder(TINY_CLIP, path, tiny_vocab)


def test_clip_encoder_without_vocab_explains(clip_state):
    encoder = load_clip_text_encoder(TINY_CLIP, None, None)
    with pytest.raises(LandSegError, match="BPE vocabulary"):
        encoder(["water"])


def test_prompter_with_clip_tower(tiny_vocab):
    encoder = load_clip_text_encoder(TINY_CLIP, None, tiny_vocab)
    tokens, text = TextPrompter(encoder, d_model=24)(["water", "forest", "x"])
    assert tokens.shape == (3, 24) and text.shape == (3, 32)
