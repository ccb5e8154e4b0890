"""Text encoders: every one implements ``encode(prompts) -> (context (B, L, D), mask (B, L) bool)``
and has ``.dim``.

* :class:`WordTokenizer` + :class:`TextEncoder` -- built in, no download: a closed word vocabulary
  and a small pre-norm transformer (learned positions) trained jointly with the diffusion model, as
  the text towers of early text-to-image models were (GLIDE trains its text transformer jointly;
  Imagen/Imagen Video later use a frozen T5). Enough for synthetic captions and small datasets. An
  unknown word is an error naming the word and listing the vocabulary -- never a silent guess.
* :class:`HFTextEncoder` -- a frozen Hugging Face ``transformers`` CLIP text model (Stable Diffusion)
  or T5 encoder (Imagen, Imagen Video, Wan) loaded from a local path or hub id with the user's
  weights; its output is float32 whatever the weights' dtype (fp32 boundary).

The empty prompt ``""`` is the null prompt for classifier-free guidance: the built-in tokenizer
encodes it to BOS alone, so every row has at least one real token.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from torch import nn

from vidiff.config import check_fields
from vidiff.nn.attention import FeedForward, SelfAttention
from vidiff.nn.norms import LayerNorm32

PAD, BOS = "<pad>", "<bos>"
_WORD = re.compile(r"\w+")


class WordTokenizer:
    """Lower-cases and splits on whitespace and punctuation; ids are ``[<pad>, <bos>, *vocab]``.

    ``__call__(prompts)`` returns ids (B, max_length) long and mask (B, max_length) bool, each row
    ``[BOS, w1, ..., wn, PAD...]``. Prompts longer than ``max_length - 1`` words are an error.
    """

    def __init__(self, vocab: Iterable[str], max_length: int = 32) -> None:
        vocab = list(vocab)
        if max_length < 2:
            raise ValueError(f"max_length must be >= 2 (BOS + one word), got {max_length}")
        seen: set[str] = set()
        for w in vocab:
            if w in (PAD, BOS):
                raise ValueError(f"vocabulary word {w!r} clashes with a special token")
            if self.split(w) != [w]:
                raise ValueError(f"vocabulary entry {w!r} is not one lower-case word")
            if w in seen:
                raise ValueError(f"vocabulary has {w!r} twice")
            seen.add(w)
        self.vocab = vocab
        self.max_length = max_length
        self.itos = [PAD, BOS, *vocab]
        self.stoi = {w: i for i, w in enumerate(self.itos)}
        self.pad_id, self.bos_id = 0, 1

    @staticmethod
    def split(text: str) -> list[str]:
        """Words of ``text``: lower-cased runs of letters/digits/underscore (punctuation dropped)."""
        return _WORD.findall(text.lower())

    @classmethod
    def from_captions(cls, captions: Iterable[str], max_length: int = 32) -> WordTokenizer:
        """A tokenizer whose vocabulary is every word of ``captions`` (sorted, so it is reproducible)."""
        words = sorted({w for c in captions for w in cls.split(c)})
        return cls(words, max_length=max_length)

    def __len__(self) -> int:
        return len(self.itos)

    def encode_one(self, prompt: str) -> list[int]:
        words = self.split(prompt)
        unknown = [w for w in words if w not in self.stoi]
        if unknown:
            raise ValueError(
                f"unknown word {unknown[0]!r} in prompt {prompt!r}; the model's vocabulary is: "
                f"{' '.join(self.vocab)}"
            )
        if len(words) + 1 > self.max_length:
            raise ValueError(
                f"prompt {prompt!r} has {len(words)} words; at most {self.max_length - 1} fit "
                f"(max_length={self.max_length} including BOS)"
            )
        return [self.bos_id] + [self.stoi[w] for w in words]

    def __call__(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(prompts, str):
            raise ValueError("prompts must be a list of strings, got a single string")
        ids = torch.full((len(prompts), self.max_length), self.pad_id, dtype=torch.long)
        for i, p in enumerate(prompts):
            row = self.encode_one(p)
            ids[i, : len(row)] = torch.tensor(row)
        return ids, ids != self.pad_id

    def decode(self, ids: list[int] | torch.Tensor) -> str:
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else ids
        return " ".join(self.itos[i] for i in ids if i > self.bos_id)

    def to_dict(self) -> dict:
        return {"vocab": list(self.vocab), "max_length": self.max_length}

    @classmethod
    def from_dict(cls, d: dict) -> WordTokenizer:
        check_fields(d, ["vocab", "max_length"], "WordTokenizer")
        return cls(d["vocab"], max_length=d.get("max_length", 32))


# --------------------------------------------------------------------------------------------------
# Built-in encoder


@dataclass
class TextEncoderConfig:
    """Built-in text encoder: word vocabulary (travels in config.json) and transformer size."""

    vocab: list[str] = field(default_factory=list)
    max_length: int = 32
    dim: int = 64
    depth: int = 2
    num_heads: int = 4
    mlp_ratio: float = 4.0
    dropout: float = 0.0

    def __post_init__(self) -> None:
        self.vocab = list(self.vocab)
        if not self.vocab:
            raise ValueError(
                "TextEncoderConfig.vocab is empty; build it with WordTokenizer.from_captions"
            )
        if self.dim < 1 or self.depth < 0:
            raise ValueError(
                f"dim must be >= 1 and depth >= 0, got dim={self.dim}, depth={self.depth}"
            )

    @classmethod
    def from_captions(cls, captions: Iterable[str], **kwargs) -> TextEncoderConfig:
        """Config whose vocabulary covers ``captions``; ``kwargs`` set the other fields."""
        return cls(vocab=WordTokenizer.from_captions(captions).vocab, **kwargs)


class _Block(nn.Module):
    """Pre-norm transformer block (GPT-2 / ViT layout) with a key-padding mask."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        self.norm1 = LayerNorm32(dim)
        self.attn = SelfAttention(dim, heads, dropout=dropout)
        self.norm2 = LayerNorm32(dim)
        self.mlp = FeedForward(dim, mlp_ratio, dropout=dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), key_mask=mask)
        return x + self.mlp(self.norm2(x))


class TextEncoder(nn.Module):
    """Word tokenizer + small transformer with learned positions, trained with the diffusion model.

    ``encode(prompts)`` runs on the module's device and keeps gradients (it is trained jointly);
    outputs at padding positions are zeroed and masked.
    """

    def __init__(self, config: TextEncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.tokenizer = WordTokenizer(config.vocab, config.max_length)
        self.dim = config.dim
        self.tok_emb = nn.Embedding(len(self.tokenizer), config.dim)
        self.pos_emb = nn.Parameter(torch.zeros(config.max_length, config.dim))
        self.blocks = nn.ModuleList(
            _Block(config.dim, config.num_heads, config.mlp_ratio, config.dropout)
            for _ in range(config.depth)
        )
        self.norm = LayerNorm32(config.dim)
        # Unit-variance words and positions (PyTorch's nn.Embedding default), not GPT's 0.02: trained
        # jointly from a diffusion loss, a tiny encoder initialised at 0.02 spends its capacity on the
        # word that lowers the loss most (colour) and maps the others to near-identical outputs, so
        # the sampled motion can ignore the direction word (docs/recipe.md). At unit scale every word
        # reaches the output (and the pooled prompt) distinct from the first step.
        nn.init.normal_(self.tok_emb.weight, std=1.0)
        nn.init.normal_(self.pos_emb, std=1.0)
        # Words added after training (a LoRA adapter's new concept, pivotal tuning): their rows,
        # kept apart from tok_emb so that the trained table stays as it is. None: no new words.
        self.new_tok_emb: nn.Parameter | None = None

    @property
    def new_words(self) -> list[str]:
        """The words :meth:`add_words` appended to the vocabulary."""
        return list(self.tokenizer.vocab[len(self.config.vocab) :])

    def add_words(self, words: Iterable[str], rows: torch.Tensor) -> None:
        """Append ``words`` to the vocabulary with embeddings ``rows`` ``(len(words), dim)`` (a
        trainable parameter; the trained words keep their ids and rows). Textual inversion's and
        pivotal tuning's new token: a LoRA adapter that teaches a new word carries its row."""
        words = list(words)
        if self.new_tok_emb is not None:
            raise ValueError(f"this text encoder has new words already: {self.new_words}")
        if rows.shape != (len(words), self.dim):
            raise ValueError(f"rows must be ({len(words)}, {self.dim}), got {tuple(rows.shape)}")
        known = [w for w in words if w in self.tokenizer.stoi]
        if known:
            raise ValueError(f"new words {known} are in the vocabulary already")
        self.tokenizer = WordTokenizer(self.config.vocab + words, self.config.max_length)
        weight = self.tok_emb.weight
        self.new_tok_emb = nn.Parameter(rows.detach().to(weight.device, weight.dtype).clone())

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``ids`` (B, L) long, ``mask`` (B, L) bool -> (context (B, L, dim), mask)."""
        table = self.tok_emb.weight
        if self.new_tok_emb is not None:
            table = torch.cat([table, self.new_tok_emb.to(table.dtype)])
        x = nn.functional.embedding(ids, table) + self.pos_emb[: ids.shape[1]]
        for block in self.blocks:
            x = block(x, mask)
        x = self.norm(x) * mask[..., None].to(x.dtype)
        return x, mask

    def encode(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        ids, mask = self.tokenizer(prompts)
        device = self.tok_emb.weight.device
        return self(ids.to(device), mask.to(device))


# --------------------------------------------------------------------------------------------------
# Hugging Face adapter


@dataclass
class HFTextEncoderConfig:
    """A frozen ``transformers`` CLIP text model or T5 encoder (the weights are the user's).

    ``subfolder``/``tokenizer_subfolder`` address diffusers layouts (``text_encoder``/``tokenizer``);
    ``dtype`` is the weights' dtype (``"float32"``, ``"bfloat16"``, ``"float16"``); outputs are float32.
    """

    name_or_path: str
    max_length: int = 77
    subfolder: str = ""
    tokenizer_subfolder: str | None = None
    dtype: str = "float32"
    local_files_only: bool = False


_HF_ENCODERS = {
    "clip": "CLIPTextModel",
    "clip_text_model": "CLIPTextModel",
    "t5": "T5EncoderModel",
    "mt5": "MT5EncoderModel",
    "umt5": "UMT5EncoderModel",
}


class HFTextEncoder(nn.Module):
    """Adapter: ``encode(prompts)`` -> (last hidden states (B, max_length, D) float32, attention mask).

    Prompts are padded to ``max_length`` (so conditional and null contexts concatenate for guidance);
    longer prompts are truncated with a warning naming them, as CLIP's 77-token window requires.
    """

    def __init__(
        self,
        name_or_path: str,
        max_length: int = 77,
        subfolder: str = "",
        tokenizer_subfolder: str | None = None,
        dtype: str | torch.dtype = "float32",
        local_files_only: bool = False,
    ) -> None:
        super().__init__()
        import transformers  # optional dependency (extra "hf"); imported only when used

        torch_dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
        if not isinstance(torch_dtype, torch.dtype):
            raise ValueError(f"dtype {dtype!r} is not a torch dtype name")
        self.config = HFTextEncoderConfig(
            str(name_or_path),
            max_length,
            subfolder,
            tokenizer_subfolder,
            str(torch_dtype).split(".")[-1],
            local_files_only,
        )
        kw = {"local_files_only": local_files_only}
        if subfolder:
            kw["subfolder"] = subfolder
        try:
            hf_cfg = transformers.AutoConfig.from_pretrained(name_or_path, **kw)
        except OSError as e:
            raise FileNotFoundError(
                f"cannot load a transformers config from {name_or_path!r}: {e}"
            ) from e
        if hf_cfg.model_type not in _HF_ENCODERS:
            raise ValueError(
                f"{name_or_path!r} is a {hf_cfg.model_type!r} model; HFTextEncoder supports "
                f"{sorted(_HF_ENCODERS)} (CLIP text and T5 encoders)"
            )
        model_cls = getattr(transformers, _HF_ENCODERS[hf_cfg.model_type])
        # transformers 5 renamed torch_dtype -> dtype
        dtype_kw = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"
        self.model = model_cls.from_pretrained(name_or_path, **{dtype_kw: torch_dtype}, **kw)
        tok_kw = {"local_files_only": local_files_only}
        tok_sub = subfolder if tokenizer_subfolder is None else tokenizer_subfolder
        if tok_sub:
            tok_kw["subfolder"] = tok_sub
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(name_or_path, **tok_kw)
        self.model.requires_grad_(False)
        self.model.eval()
        self.max_length = max_length
        self.dim = int(self.model.config.hidden_size)

    def train(self, mode: bool = True) -> HFTextEncoder:
        """Frozen: stays in eval mode (no dropout) whatever the surrounding module does."""
        super().train(mode)
        self.model.eval()
        return self

    @torch.no_grad()
    def encode(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(prompts, str):
            raise ValueError("prompts must be a list of strings, got a single string")
        full = self.tokenizer(list(prompts), truncation=False)["input_ids"]
        for p, ids in zip(prompts, full):
            if len(ids) > self.max_length:
                warnings.warn(
                    f"prompt {p!r} has {len(ids)} tokens; truncated to max_length={self.max_length}",
                    stacklevel=2,
                )
        tok = self.tokenizer(
            list(prompts),
            padding="max_length",
            max_length=self.max_length,
            truncation=True,
            return_tensors="pt",
        )
        device = next(self.model.parameters()).device
        ids = tok["input_ids"].to(device)
        mask = tok["attention_mask"].to(device).bool()
        empty = [p for p, m in zip(prompts, mask.any(dim=1).tolist()) if not m]
        if empty:
            raise ValueError(f"prompt(s) {empty} tokenize to no tokens with this tokenizer")
        out = self.model(input_ids=ids, attention_mask=mask.long()).last_hidden_state
        return out.float(), mask


# --------------------------------------------------------------------------------------------------


def build_text_encoder(config: TextEncoderConfig | HFTextEncoderConfig | dict) -> nn.Module:
    """Text encoder from a config dataclass, or from a dict with ``type`` ``"builtin"`` | ``"hf"``
    and that config's fields (the form stored in config.json)."""
    if isinstance(config, dict):
        d = dict(config)
        kind = d.pop("type", None)
        classes = {"builtin": TextEncoderConfig, "hf": HFTextEncoderConfig}
        if kind not in classes:
            raise ValueError(f"text encoder 'type' must be one of {sorted(classes)}, got {kind!r}")
        cls = classes[kind]
        check_fields(d, cls, cls.__name__)
        config = cls(**d)
    if isinstance(config, TextEncoderConfig):
        return TextEncoder(config)
    if isinstance(config, HFTextEncoderConfig):
        return HFTextEncoder(**dataclasses.asdict(config))
    raise ValueError(f"not a text encoder config: {type(config).__name__}")


def text_encoder_config_dict(config: TextEncoderConfig | HFTextEncoderConfig) -> dict:
    """The dict form :func:`build_text_encoder` reads back (with its ``type``)."""
    kind = "builtin" if isinstance(config, TextEncoderConfig) else "hf"
    return {"type": kind, **dataclasses.asdict(config)}


__all__ = [
    "HFTextEncoder",
    "HFTextEncoderConfig",
    "TextEncoder",
    "TextEncoderConfig",
    "WordTokenizer",
    "build_text_encoder",
    "text_encoder_config_dict",
]
