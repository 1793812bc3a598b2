"""Byte-level BPE tokenizer producing the same ids as OpenAI CLIP's text tokenizer.

LIV's text encoder is CLIP's, so pretrained weights are only meaningful if every sentence is turned
into exactly the ids CLIP was trained on. The merges file is OpenAI's (MIT licence, see
``LICENSE-openai-clip-bpe.txt``); the code here is an independent implementation.
"""

from __future__ import annotations

import gzip
import html
import importlib.resources
import os
import sys
import threading
import warnings
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Literal

import ftfy
import numpy as np
import regex
import torch

SOT_TOKEN = 49406
EOT_TOKEN = 49407
VOCAB_SIZE = 49408
DEFAULT_CONTEXT_LENGTH = 77

_VOCAB_RESOURCE = "bpe_simple_vocab_16e6.txt.gz"
_SOT_TEXT = "<|startoftext|>"
_EOT_TEXT = "<|endoftext|>"
_END_OF_WORD = "</w>"
# CLIP uses only the first 49152 - 256 - 2 merges of the file; the rest were never trained on.
_NUM_MERGES = 49152 - 256 - 2

# The `regex` package (not `re`) is required: `\p{L}`/`\p{N}` are unavailable in `re`, and the two
# modules disagree on `\s` (e.g. U+001C..U+001F), which would change whitespace collapsing.
_PRETOKEN_PATTERN = regex.compile(
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+",
    regex.IGNORECASE,
)
_WHITESPACE_RUN = regex.compile(r"\s+")

Truncate = bool | Literal["warn"]
"""What :func:`tokenize` does with a text longer than the context: ``"warn"`` cuts it and warns once per
text (:class:`TextTruncatedWarning`), ``True`` cuts it silently, ``False`` raises ``ValueError``."""


class TextTruncatedWarning(UserWarning):
    """A text had more tokens than the model's context and was cut: the model ignores the rest of it.

    Issued once per distinct text and context length in a process. Filter it like any warning, e.g.
    ``warnings.simplefilter("error", liv.TextTruncatedWarning)`` to refuse such texts everywhere.
    """


def _byte_alphabet() -> list[tuple[int, str]]:
    """(byte, character) pairs in vocabulary order: '!'..'~', '¡'..'¬', '®'..'ÿ', then the rest."""
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    pairs = [(b, chr(b)) for b in printable]
    # Bytes that would be whitespace/control characters get stand-ins above U+00FF so every
    # symbol in the merges file is a visible, non-space character.
    taken = set(printable)
    others = [b for b in range(256) if b not in taken]
    pairs += [(b, chr(256 + n)) for n, b in enumerate(others)]
    return pairs


def clean_text(text: str) -> str:
    """Normalise ``text`` exactly as CLIP does before tokenising.

    Repairs mojibake (ftfy), unescapes HTML entities twice (data is often double-escaped),
    collapses whitespace runs to one space, strips, and lower-cases. Returns a new ``str``.
    """
    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return _WHITESPACE_RUN.sub(" ", text).strip().lower()


class BPETokenizer:
    """CLIP's byte-level BPE tokenizer with a 49408-entry vocabulary.

    ``vocab_path`` is an optional path to a gzipped merges file in CLIP's format (a header line,
    then one ``"a b"`` merge per line); by default the file shipped in ``liv.models`` is used.
    The file is read on first use, so constructing an instance is cheap.
    """

    def __init__(self, vocab_path: str | os.PathLike[str] | None = None) -> None:
        self._vocab_path = vocab_path
        self._lock = threading.Lock()
        self._loaded = False
        # (text, context_length) pairs already warned about: a goal scored at every step of a run
        # would otherwise repeat the same warning thousands of times.
        self._warned: set[tuple[str, int]] = set()

    def _read_vocab_bytes(self) -> bytes:
        if self._vocab_path is not None:
            with open(self._vocab_path, "rb") as f:
                return f.read()
        # importlib.resources also works when the package is inside a zip or installed wheel.
        return importlib.resources.files("liv.models").joinpath(_VOCAB_RESOURCE).read_bytes()

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            lines = gzip.decompress(self._read_vocab_bytes()).decode("utf-8").split("\n")
            merges = [tuple(line.split()) for line in lines[1 : _NUM_MERGES + 1]]
            if len(merges) != _NUM_MERGES or any(len(m) != 2 for m in merges):
                source = self._vocab_path or _VOCAB_RESOURCE
                raise ValueError(f"vocabulary file {source!r} is malformed")
            alphabet = _byte_alphabet()
            tokens = [c for _, c in alphabet] + [c + _END_OF_WORD for _, c in alphabet]
            tokens += [a + b for a, b in merges]
            tokens += [_SOT_TEXT, _EOT_TEXT]
            self._encoder = {tok: i for i, tok in enumerate(tokens)}
            self._decoder = tokens
            self._ranks = {pair: rank for rank, pair in enumerate(merges)}
            self._byte_to_char = dict(alphabet)
            self._char_to_byte = {c: b for b, c in alphabet}
            # Literal special-token strings in a text map to the special ids, as in CLIP.
            self._cache: dict[str, tuple[int, ...]] = {_SOT_TEXT: (SOT_TOKEN,)}
            self._cache[_EOT_TEXT] = (EOT_TOKEN,)
            self._loaded = True

    @property
    def vocab_size(self) -> int:
        """Number of token ids (49408 for CLIP's vocabulary)."""
        self._ensure_loaded()
        return len(self._decoder)

    def _bpe(self, word: str) -> tuple[int, ...]:
        """Ids of one pre-token already mapped to the byte alphabet; memoised."""
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        symbols = list(word)
        symbols[-1] += _END_OF_WORD
        ranks = self._ranks
        while len(symbols) > 1:
            best = min(zip(symbols, symbols[1:]), key=lambda p: ranks.get(p, _NUM_MERGES))
            if best not in ranks:
                break
            first, second = best
            merged: list[str] = []
            i = 0
            # Left-to-right, non-overlapping: "a a a" with merge (a, a) becomes "aa a".
            while i < len(symbols):
                if i + 1 < len(symbols) and symbols[i] == first and symbols[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            symbols = merged
        ids = tuple(self._encoder[s] for s in symbols)
        self._cache[word] = ids
        return ids

    def encode(self, text: str) -> list[int]:
        """BPE ids of ``text`` (after :func:`clean_text`), without start/end tokens."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        self._ensure_loaded()
        ids: list[int] = []
        for piece in _PRETOKEN_PATTERN.findall(clean_text(text)):
            word = "".join(self._byte_to_char[b] for b in piece.encode("utf-8"))
            ids.extend(self._bpe(word))
        return ids

    def count_tokens(self, text: str) -> int:
        """Number of BPE tokens in ``text``, excluding start/end; a row needs this + 2 slots."""
        return len(self.encode(text))

    def tokenize(
        self,
        texts: str | Sequence[str],
        context_length: int = DEFAULT_CONTEXT_LENGTH,
        truncate: Truncate = "warn",
    ) -> torch.Tensor:
        """Token-id matrix for one text or a batch of texts.

        Returns an int64 tensor of shape ``(N, context_length)`` (``N = 1`` for a single ``str``);
        row ``i`` is ``[SOT, ids of texts[i]..., EOT, 0, 0, ...]``. A text that does not fit is cut
        to ``context_length`` ids with EOT forced into the last slot, as CLIP does, when ``truncate`` is
        ``"warn"`` (the default; a :class:`TextTruncatedWarning` names the text and its token count,
        once per distinct text) or ``True`` (silently). With ``truncate=False`` it raises
        ``ValueError`` naming the text's index, its start and end, and its token count.
        """
        batch = _as_text_list(texts)
        if not isinstance(context_length, (int, np.integer)) or context_length < 2:
            raise ValueError(f"context_length must be an int >= 2, got {context_length!r}")
        if truncate not in (True, False, "warn"):
            raise ValueError(f"truncate must be True, False or 'warn', got {truncate!r}")
        context_length = int(context_length)
        out = torch.zeros(len(batch), context_length, dtype=torch.long)
        for i, text in enumerate(batch):
            row = [SOT_TOKEN, *self.encode(text), EOT_TOKEN]
            if len(row) > context_length:
                if truncate is False:
                    raise ValueError(f"text {i} {_too_long(text, len(row), context_length)}")
                if truncate == "warn" and (text, context_length) not in self._warned:
                    warnings.warn(f"text {_too_long(text, len(row), context_length)}; it is cut to its first "
                                  f"{context_length} tokens and the rest is ignored", TextTruncatedWarning,
                                  stacklevel=_first_caller_outside_liv())
                    # Marked only once warn() returned: under an "error" filter every call raises.
                    self._warned.add((text, context_length))
                row = row[:context_length]
                row[-1] = EOT_TOKEN
            out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        return out

    def decode(self, ids: Sequence[int] | torch.Tensor | np.ndarray) -> str:
        """Text for a 1-D sequence of ids (list, tensor or array), e.g. one row of :meth:`tokenize`.

        Start/end tokens are dropped, as are trailing zeros (padding; id 0 is also ``"!"``, but a
        real encoding never ends with it because every word ends in an end-of-word token). Each
        end-of-word marker becomes a space, so the result usually has a trailing space. Byte
        sequences cut by truncation decode with U+FFFD replacement characters.
        """
        self._ensure_loaded()
        if isinstance(ids, (torch.Tensor, np.ndarray)):
            if ids.ndim != 1:
                raise ValueError(f"decode expects 1-D ids, got shape {tuple(ids.shape)}")
            ids = ids.tolist()
        values = [int(t) for t in ids if int(t) not in (SOT_TOKEN, EOT_TOKEN)]
        while values and values[-1] == 0:
            values.pop()
        out = bytearray()
        for t in values:
            if not 0 <= t < len(self._decoder):
                raise ValueError(f"token id {t} is outside [0, {len(self._decoder)})")
            token = self._decoder[t]
            body = token.removesuffix(_END_OF_WORD)
            out.extend(self._char_to_byte[c] for c in body)
            if body != token:
                out += b" "
        return out.decode("utf-8", errors="replace")


_LIV_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _first_caller_outside_liv() -> int:
    """``stacklevel`` for a warning issued by our caller that names the user's line, not liv's internals
    (texts reach the tokenizer through several layers: values -> embed_goals -> encode_texts -> here)."""
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_LIV_DIR + os.sep):
        frame, level = frame.f_back, level + 1
    return level


def _too_long(text: str, num_tokens: int, context_length: int) -> str:
    """"('start ... end') is too long: N tokens ..." -- start and end, as over-long texts often share
    their start and differ only in the part that is cut off."""
    shown = text if len(text) <= 72 else f"{text[:40]} ... {text[-28:]}"
    return (f"({shown!r}) is too long: {num_tokens} tokens with start/end, {num_tokens - context_length} over "
            f"context_length={context_length}")


def _as_text_list(texts: str | Iterable[str]) -> list[str]:
    if isinstance(texts, str):
        return [texts]
    if isinstance(texts, (bytes, bytearray)) or not isinstance(texts, Iterable):
        raise TypeError(f"texts must be a str or a sequence of str, got {type(texts).__name__}")
    batch = list(texts)
    for i, text in enumerate(batch):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] must be a str, got {type(text).__name__}")
    return batch


@lru_cache(maxsize=None)
def default_tokenizer() -> BPETokenizer:
    """The shared tokenizer over the bundled CLIP vocabulary (created once, loaded on first use)."""
    return BPETokenizer()


def tokenize(
    texts: str | Sequence[str],
    context_length: int = DEFAULT_CONTEXT_LENGTH,
    truncate: Truncate = "warn",
) -> torch.Tensor:
    """CLIP token ids with the default tokenizer; see :meth:`BPETokenizer.tokenize`.

    Returns an int64 tensor of shape ``(N, context_length)``: ``[SOT, ids..., EOT, 0...]`` per text.
    Over-long texts: cut with a :class:`TextTruncatedWarning` once per text (``truncate="warn"``),
    cut silently (``True``) or refused with ``ValueError`` (``False``).
    """
    return default_tokenizer().tokenize(texts, context_length=context_length, truncate=truncate)


def decode(ids: Sequence[int] | torch.Tensor | np.ndarray) -> str:
    """Text for a 1-D sequence of token ids; see :meth:`BPETokenizer.decode`."""
    return default_tokenizer().decode(ids)


def count_tokens(text: str) -> int:
    """Number of BPE tokens in ``text`` excluding start/end (fits iff ``<= context_length - 2``)."""
    return default_tokenizer().count_tokens(text)
