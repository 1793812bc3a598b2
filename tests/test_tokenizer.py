"""Tests of the CLIP BPE tokenizer against the reference `clip.tokenize` output and by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from liv.models import tokenizer as tok
from liv.models.tokenizer import (
    DEFAULT_CONTEXT_LENGTH,
    EOT_TOKEN,
    SOT_TOKEN,
    VOCAB_SIZE,
    BPETokenizer,
    clean_text,
    count_tokens,
    decode,
    tokenize,
)

ASCII_SENTENCES = [
    "open microwave",
    "Turn ON the Stove!",
    "pick up the  red   block, then place it in the bowl.",
    "it's the robot's 3rd try: don't drop the cup",
]


@pytest.fixture(scope="module")
def reference(reference_fixtures: Path) -> tuple[list[str], list[bool], np.ndarray]:
    meta = json.loads((reference_fixtures / "meta.json").read_text())
    with np.load(reference_fixtures / "arrays.npz") as arrays:
        tokens = arrays["tokens"]
    return meta["sentences"], meta["fits_without_truncation"], tokens


# --- against the reference implementation -------------------------------------------------------


def test_matches_reference_tokens(reference):
    sentences, _, expected = reference
    assert expected.shape == (12, 77) and expected.dtype == np.int64
    got = tokenize(sentences, truncate=True)
    assert got.dtype == torch.long
    for i, sentence in enumerate(sentences):
        msg = f"sentence {i}: {sentence!r}"
        np.testing.assert_array_equal(got[i].numpy(), expected[i], err_msg=msg)


def test_truncate_false_raises_only_for_long_text(reference):
    sentences, fits, expected = reference
    for i, (sentence, ok) in enumerate(zip(sentences, fits)):
        if ok:
            row = tokenize(sentence, truncate=False)[0]
            np.testing.assert_array_equal(row.numpy(), expected[i])
        else:
            with pytest.raises(ValueError, match=r"too long: .* \d+ over context_length=77"):
                tokenize(sentence, truncate=False)
    # In a batch, the message names the offending text's index and its beginning.
    with pytest.raises(ValueError, match=r"text 11 \('wipe the table"):
        tokenize(sentences, truncate=False)


def test_truncated_row_ends_with_eot(reference):
    sentences, fits, _ = reference
    assert not fits[-1]
    row = tokenize(sentences[-1], truncate=True)[0]
    assert row[0] == SOT_TOKEN
    assert row[DEFAULT_CONTEXT_LENGTH - 1] == EOT_TOKEN
    assert (row != 0).all()
    assert (row == EOT_TOKEN).sum() == 1


def test_count_tokens_matches_reference_rows(reference):
    sentences, fits, expected = reference
    for sentence, ok, row in zip(sentences, fits, expected):
        if ok:
            n_real = int(((row != 0) & (row != SOT_TOKEN) & (row != EOT_TOKEN)).sum())
            assert count_tokens(sentence) == n_real, sentence
        else:
            assert count_tokens(sentence) > DEFAULT_CONTEXT_LENGTH - 2


# --- hand-checkable facts -----------------------------------------------------------------------


def test_vocabulary_and_special_ids():
    t = tok.default_tokenizer()
    assert t is tok.default_tokenizer()
    assert t.vocab_size == VOCAB_SIZE == 49408
    assert (SOT_TOKEN, EOT_TOKEN) == (49406, 49407)
    assert t.encode("<|startoftext|>") == [SOT_TOKEN]
    assert t.encode("<|endoftext|>") == [EOT_TOKEN]
    # Byte alphabet order: '!' is id 0, 'a' is ord('a') - ord('!'); '</w>' variants follow at +256.
    assert t.encode("a") == [ord("a") - ord("!") + 256]
    assert decode([0, 256]) == "!! "


def test_custom_vocab_path_gives_same_ids():
    path = Path(tok.__file__).with_name("bpe_simple_vocab_16e6.txt.gz")
    custom = BPETokenizer(path)
    assert torch.equal(custom.tokenize(ASCII_SENTENCES), tokenize(ASCII_SENTENCES))


def test_empty_string():
    row = tokenize("")
    expected = torch.zeros(1, 77, dtype=torch.long)
    expected[0, :2] = torch.tensor([SOT_TOKEN, EOT_TOKEN])
    assert torch.equal(row, expected)
    assert count_tokens("") == 0
    assert count_tokens("   \n\t ") == 0


def test_batch_shape_dtype_and_padding():
    out = tokenize(ASCII_SENTENCES)
    assert out.shape == (len(ASCII_SENTENCES), DEFAULT_CONTEXT_LENGTH)
    assert out.dtype == torch.int64
    assert (out[:, 0] == SOT_TOKEN).all()
    for row, text in zip(out, ASCII_SENTENCES):
        n = count_tokens(text)
        assert row[n + 1] == EOT_TOKEN
        assert (row[n + 2 :] == 0).all()
    assert tokenize([]).shape == (0, DEFAULT_CONTEXT_LENGTH)
    assert torch.equal(tokenize(("open microwave",)), tokenize("open microwave"))


def test_other_context_length():
    text = "close drawer turn faucet right push black mug right"
    full = tokenize(text)[0]
    n = count_tokens(text)
    assert tokenize(text, context_length=n + 2).tolist() == [full[: n + 2].tolist()]
    short = tokenize(text, context_length=5, truncate=True)
    assert short.shape == (1, 5)
    assert short[0].tolist() == full[:4].tolist() + [EOT_TOKEN]
    with pytest.raises(ValueError, match="text 0"):
        tokenize(text, context_length=n + 1, truncate=False)
    assert tokenize(text, context_length=100).shape == (1, 100)
    with pytest.raises(ValueError):
        tokenize(text, context_length=1)


def test_text_cleaning():
    assert clean_text("  Pick&amp;amp;Place \n\t NOW ") == "pick&place now"
    assert torch.equal(tokenize("OPEN   the\nDOOR"), tokenize("open the door"))
    # Words are split off punctuation, digits one by one, contractions kept as their own token.
    t = tok.default_tokenizer()
    assert len(t.encode("90")) == 2
    assert t.encode("it's") == t.encode("it") + t.encode("'s")


@pytest.mark.parametrize("text", ASCII_SENTENCES)
def test_decode_round_trip(text):
    row = tokenize(text)[0]
    decoded = decode(row)
    assert decode(row.numpy()) == decode(row.tolist()) == decoded
    # Decoding re-inserts a space at every word end, so compare with whitespace removed.
    assert "".join(decoded.split()) == "".join(clean_text(text).split())


def test_decode_non_ascii_and_truncated_bytes():
    assert decode(tokenize("café crème brûlée")[0]).split() == ["café", "crème", "brûlée"]
    # Truncation can cut a multi-byte character; decoding must not fail.
    for length in range(3, 8):
        row = tokenize("日本語のテキスト", context_length=length, truncate=True)[0]
        assert isinstance(decode(row), str)
    with pytest.raises(ValueError):
        decode([VOCAB_SIZE])
    with pytest.raises(ValueError):
        decode(torch.zeros(2, 3, dtype=torch.long))


@pytest.mark.parametrize("bad", [None, 3, b"open microwave", 1.5])
def test_non_string_input_raises_type_error(bad):
    with pytest.raises(TypeError, match="str"):
        tokenize(bad)
    with pytest.raises(TypeError, match="str"):
        count_tokens(bad)


def test_non_string_in_batch_names_index():
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        tokenize(["open microwave", 7])


def test_truncate_takes_true_false_or_warn():
    with pytest.raises(ValueError, match="truncate must be True, False or 'warn'"):
        tokenize("open microwave", truncate="error")  # type: ignore[arg-type]
