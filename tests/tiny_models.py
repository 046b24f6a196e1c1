"""Tiny random Hugging Face models built inside the tests (never downloaded)."""

from __future__ import annotations

from pathlib import Path

_WORDS = [
    "scratch",
    "dent",
    "oil",
    "dust",
    "housing",
    "surface",
    "bracket",
    "screw",
    "missing",
    "part",
    "ok",
    "good",
    "bad",
    "left",
    "right",
    "line",
    "shift",
    "rim",
    "flange",
    "gasket",
    "clip",
    "no",
    "found",
    "on",
    "the",
    "a",
    "of",
    "at",
    "near",
]


def save_tiny_tokenizer(out: Path) -> None:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *_WORDS]
    tokenizer = Tokenizer(models.WordPiece({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    fast = BertTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    fast.save_pretrained(out)


def _tiny_bert_config(**extra: object) -> object:
    from transformers import BertConfig

    return BertConfig(
        vocab_size=len(_WORDS) + 5,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        **extra,
    )


def tiny_bert_classifier(
    out: Path, labels: tuple[str, ...] = ("ok", "scratch", "dent"), seed: int = 0
) -> Path:
    import torch
    from transformers import BertForSequenceClassification

    torch.manual_seed(seed)
    config = _tiny_bert_config(
        id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)}
    )
    BertForSequenceClassification(config).eval().save_pretrained(out)
    save_tiny_tokenizer(out)
    return out


def tiny_bert_encoder(out: Path, seed: int = 0) -> Path:
    import torch
    from transformers import BertModel

    torch.manual_seed(seed)
    BertModel(_tiny_bert_config()).eval().save_pretrained(out)
    save_tiny_tokenizer(out)
    return out


def tiny_vit_classifier(out: Path, labels: tuple[str, ...] = ("ok", "crack"), seed: int = 0) -> Path:
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(seed)
    config = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    ViTForImageClassification(config).eval().save_pretrained(out)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(out)
    return out


def tiny_fnet_classifier(out: Path) -> Path:
    """An architecture transformers knows but optimum cannot export to ONNX."""
    from transformers import FNetConfig, FNetForSequenceClassification

    config = FNetConfig(
        vocab_size=64, hidden_size=32, num_hidden_layers=1, intermediate_size=64, num_labels=2
    )
    FNetForSequenceClassification(config).save_pretrained(out)
    save_tiny_tokenizer(out)
    return out


def tiny_sentence_encoder(out: Path, seed: int = 0) -> Path:
    """A sentence-transformers folder (tiny BERT + mean pooling + normalisation), like MiniLM's layout."""
    from sentence_transformers import SentenceTransformer, models

    encoder = tiny_bert_encoder(out.with_name(out.name + "-hf"), seed=seed)
    word = models.Transformer(str(encoder), max_seq_length=64)
    pooling = models.Pooling(word.get_word_embedding_dimension(), "mean")
    SentenceTransformer(modules=[word, pooling, models.Normalize()], device="cpu").save(str(out))
    return out
