"""Text encoders: the built-in word tokenizer + transformer, and the Hugging Face adapter."""

import warnings

import pytest
import torch

from vidiff.models.text import (
    HFTextEncoder,
    TextEncoder,
    TextEncoderConfig,
    WordTokenizer,
    build_text_encoder,
    text_encoder_config_dict,
)

CAPTIONS = [
    "a red circle moving right",
    "a blue square moving up",
    "A green triangle, moving left.",
]


def test_word_tokenizer_ids_and_null_prompt():
    tok = WordTokenizer.from_captions(CAPTIONS, max_length=8)
    assert tok.vocab == sorted(tok.vocab) and "green" in tok.vocab and "," not in tok.vocab
    ids, mask = tok(["A Red circle, moving RIGHT!", ""])
    assert ids.shape == mask.shape == (2, 8) and mask.dtype == torch.bool
    assert ids[0, 0] == tok.bos_id and mask[0].sum() == 6
    assert tok.decode(ids[0]) == "a red circle moving right"
    assert ids[1].tolist() == [tok.bos_id] + [tok.pad_id] * 7  # null prompt = BOS only
    assert mask[1].tolist() == [True] + [False] * 7


def test_word_tokenizer_errors():
    tok = WordTokenizer.from_captions(CAPTIONS, max_length=4)
    with pytest.raises(ValueError, match=r"unknown word 'purple'.*circle.*triangle"):
        tok(["a purple circle"])
    with pytest.raises(ValueError, match="at most 3"):
        tok(["a red circle moving"])
    with pytest.raises(ValueError, match="list"):
        tok("a red circle")
    with pytest.raises(ValueError, match="twice"):
        WordTokenizer(["a", "a"])
    with pytest.raises(ValueError, match="one lower-case word"):
        WordTokenizer(["Red"])
    with pytest.raises(ValueError, match="special"):
        WordTokenizer(["<pad>"])


def test_word_tokenizer_dict_round_trip():
    tok = WordTokenizer.from_captions(CAPTIONS, max_length=12)
    again = WordTokenizer.from_dict(tok.to_dict())
    assert again.vocab == tok.vocab and again.max_length == 12
    assert torch.equal(again(CAPTIONS)[0], tok(CAPTIONS)[0])
    with pytest.raises(ValueError, match="extra"):
        WordTokenizer.from_dict({**tok.to_dict(), "extra": 1})


def test_text_encoder_shapes_masking_and_batch_independence():
    torch.manual_seed(0)
    enc = TextEncoder(
        TextEncoderConfig.from_captions(CAPTIONS, dim=32, depth=2, num_heads=4, max_length=10)
    )
    assert enc.dim == 32
    ctx, mask = enc.encode(CAPTIONS + [""])
    assert ctx.shape == (4, 10, 32) and ctx.dtype == torch.float32 and mask.shape == (4, 10)
    assert torch.equal(ctx[~mask], torch.zeros_like(ctx[~mask]))  # padding is zeroed
    alone, _ = enc.encode([CAPTIONS[1]])
    torch.testing.assert_close(alone[0], ctx[1], atol=1e-6, rtol=1e-5)  # batch does not matter
    assert (ctx[0] - ctx[1]).abs().max() > 1e-3  # different prompts, different context
    ctx.sum().backward()  # trained jointly: gradients reach the embeddings
    assert enc.tok_emb.weight.grad.abs().sum() > 0


def test_build_text_encoder_from_dict():
    cfg = TextEncoderConfig.from_captions(CAPTIONS, dim=16, depth=1, num_heads=2)
    d = text_encoder_config_dict(cfg)
    assert d["type"] == "builtin"
    enc = build_text_encoder(d)
    assert isinstance(enc, TextEncoder) and enc.config == cfg
    with pytest.raises(ValueError, match="colour"):
        build_text_encoder({**d, "colour": 1})
    with pytest.raises(ValueError, match="type"):
        build_text_encoder({"vocab": ["a"]})
    with pytest.raises(ValueError, match="empty"):
        TextEncoderConfig(vocab=[])


# --------------------------------------------------------------------------------------------------
# Hugging Face adapter, offline: tiny random models and a word-level tokenizer the test saves.

WORDS = ["a", "red", "blue", "circle", "square", "moving", "right", "up"]


def _save_tokenizer(path, bos: bool):
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<eos>": 1, "<unk>": 2, "<bos>": 3} | {
        w: i + 4 for i, w in enumerate(WORDS)
    }
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    template = "<bos> $A <eos>" if bos else "$A <eos>"
    tk.post_processor = processors.TemplateProcessing(
        single=template, special_tokens=[("<bos>", 3), ("<eos>", 1)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tk,
        pad_token="<pad>",
        eos_token="<eos>",
        unk_token="<unk>",
        bos_token="<bos>",
    )
    fast.save_pretrained(path)
    return len(vocab)


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    from transformers import CLIPTextConfig, CLIPTextModel

    path = tmp_path_factory.mktemp("clip")
    n = _save_tokenizer(path, bos=True)
    torch.manual_seed(0)
    cfg = CLIPTextConfig(
        vocab_size=n,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=16,
        pad_token_id=0,
        bos_token_id=3,
        eos_token_id=1,
    )
    CLIPTextModel(cfg).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def t5_dir(tmp_path_factory):
    from transformers import T5Config, T5EncoderModel

    path = tmp_path_factory.mktemp("t5")
    n = _save_tokenizer(path, bos=False)
    torch.manual_seed(0)
    cfg = T5Config(
        vocab_size=n,
        d_model=24,
        d_kv=6,
        d_ff=48,
        num_layers=2,
        num_heads=4,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    T5EncoderModel(cfg).save_pretrained(path)
    return path


@pytest.mark.parametrize("which,dim", [("clip", 32), ("t5", 24)])
def test_hf_text_encoder_matches_direct_call(which, dim, clip_dir, t5_dir):
    from transformers import AutoTokenizer, CLIPTextModel, T5EncoderModel

    path = clip_dir if which == "clip" else t5_dir
    enc = HFTextEncoder(str(path), max_length=12, local_files_only=True)
    assert enc.dim == dim
    assert not any(p.requires_grad for p in enc.parameters())
    prompts = ["a red circle moving right", "", "a blue square"]
    ctx, mask = enc.encode(prompts)
    assert ctx.shape == (3, 12, dim) and ctx.dtype == torch.float32
    assert mask.dtype == torch.bool and mask.sum(1).tolist() == (
        [7, 2, 5] if which == "clip" else [6, 1, 4]
    )

    model = (CLIPTextModel if which == "clip" else T5EncoderModel).from_pretrained(path).eval()
    tok = AutoTokenizer.from_pretrained(path)(
        prompts, padding="max_length", max_length=12, return_tensors="pt"
    )
    with torch.no_grad():
        ref = model(
            input_ids=tok["input_ids"], attention_mask=tok["attention_mask"]
        ).last_hidden_state
    torch.testing.assert_close(ctx, ref)
    enc.train()
    assert not enc.model.training  # frozen encoders never enter train mode (no dropout)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ctx, _ = enc.encode([" ".join(["a red circle"] * 5)])
    assert ctx.shape == (1, 12, dim)
    assert any("truncated" in str(w.message) for w in caught)


def test_hf_text_encoder_bf16_weights_give_fp32_and_errors(clip_dir, tmp_path):
    enc = build_text_encoder(
        {"type": "hf", "name_or_path": str(clip_dir), "max_length": 8, "dtype": "bfloat16"}
    )
    assert next(enc.model.parameters()).dtype == torch.bfloat16
    ctx, _ = enc.encode(["a red circle"])
    assert ctx.dtype == torch.float32
    with pytest.raises(FileNotFoundError, match="nowhere"):
        HFTextEncoder(str(tmp_path / "nowhere"), local_files_only=True)
    from transformers import GPT2Config

    GPT2Config(n_layer=1, n_embd=8, n_head=2).save_pretrained(tmp_path / "gpt2")
    with pytest.raises(ValueError, match="gpt2"):
        HFTextEncoder(str(tmp_path / "gpt2"), local_files_only=True)
