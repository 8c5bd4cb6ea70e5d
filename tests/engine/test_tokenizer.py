"""Tokenizer: special-token ids, save/load round trip, load errors, batching, corpus reading."""

import json

import pytest
import torch

from voltx.engine.tokenizer import (
    pad_rows,
    BOS_ID,
    EOS_ID,
    PAD_ID,
    SPECIAL_TOKENS,
    UNK_ID,
    corpus_texts,
    encode_batch,
    load_tokenizer,
    save_tokenizer,
    train_bpe,
)
from voltx.errors import DataError, MissingInputError

CORPUS = [
    "def add(a, b):\n    return a + b\n",
    "for item in items:\n    print(item)\n",
    "import os\nfrom pathlib import Path\n",
    "the quick brown fox jumps over the lazy dog",
] * 20


@pytest.fixture(scope="module")
def tok():
    return train_bpe(CORPUS, vocab_size=400, min_frequency=2)


def test_special_tokens_are_ids_0_to_3(tok):
    assert [tok.token_to_id(t) for t in SPECIAL_TOKENS] == [0, 1, 2, 3]
    assert (PAD_ID, UNK_ID, BOS_ID, EOS_ID) == (0, 1, 2, 3)


def test_byte_level_round_trip_and_no_prefix_space(tok):
    text = "def f(x):\n\treturn 'héllo ✓'"
    enc = tok.encode(text, add_special_tokens=False)
    assert enc.tokens[0] == "def"  # add_prefix_space=False
    assert UNK_ID not in enc.ids  # byte alphabet covers everything
    assert tok.decode(enc.ids) == text


def test_save_load_round_trip(tok, tmp_path):
    path = save_tokenizer(tok, tmp_path / "sub" / "tok.json")
    assert not list(path.parent.glob("*.tmp"))
    loaded = load_tokenizer(path)
    assert loaded.encode("return a + b").ids == tok.encode("return a + b").ids


def test_missing_file_is_missing_input_error(tmp_path):
    path = tmp_path / "nope.json"
    with pytest.raises(MissingInputError) as exc:
        load_tokenizer(path)
    assert str(path) in str(exc.value) and exc.value.exit_code == 66


@pytest.mark.parametrize(
    "content, reason",
    [
        ("this is not json", "not valid JSON"),
        (json.dumps({"hello": 1}), "model"),
        (json.dumps({"model": {"type": "Nonsense"}}), "could not read"),
    ],
)
def test_non_tokenizer_file_is_data_error(tmp_path, content, reason):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(DataError) as exc:
        load_tokenizer(path)
    msg = str(exc.value)
    assert str(path) in msg and reason in msg and "voltx train-tokenizer" in msg
    assert exc.value.exit_code == 65


def test_wrong_special_ids_is_data_error(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    other = Tokenizer(models.BPE())
    other.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    other.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=300, special_tokens=["<eos>", "<pad>"]))
    path = tmp_path / "other.json"
    other.save(str(path))
    with pytest.raises(DataError, match="special token"):
        load_tokenizer(path)


def test_encode_batch_pads_to_longest_and_caps(tok):
    ids, mask = encode_batch(tok, ["return a + b", "a", ""], max_len=64)
    n = len(tok.encode("return a + b").ids)
    assert ids.shape == mask.shape == (3, n)
    assert ids.dtype == torch.long and mask.dtype == torch.bool
    assert mask.sum(1).tolist() == [n, 1, 0]
    assert (ids[~mask] == PAD_ID).all()
    assert BOS_ID not in ids.tolist()[0]  # no special tokens added
    ids2, mask2 = encode_batch(tok, ["return a + b"], max_len=2)
    assert ids2.shape == (1, 2) and mask2.all()


def test_corpus_texts(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "z.py").write_text("x = 1\n" * 20)
    (tmp_path / "a.txt").write_text("short")  # under min_chars: skipped
    (tmp_path / "c.md").write_text("ignored " * 20)  # not a corpus suffix inside a directory
    (tmp_path / "d.jsonl").write_text(
        json.dumps({"content": "y = 2\n" * 20}) + "\n\n" + json.dumps({"code": "z = 3\n" * 20}) + "\n"
    )
    texts = list(corpus_texts([tmp_path], max_files=None))
    # sorted walk: files of the root (d.jsonl) come before those of subdirectory b/
    assert texts == ["y = 2\n" * 20, "z = 3\n" * 20, "x = 1\n" * 20]
    assert len(list(corpus_texts([tmp_path], max_files=2))) == 2
    assert list(corpus_texts([tmp_path], max_files=None, max_chars=100)) == []


def test_corpus_bad_jsonl_line_names_file_and_line(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps({"content": "a" * 60}) + "\n{broken\n")
    with pytest.raises(DataError, match=r"data\.jsonl:2"):
        list(corpus_texts([path], max_files=None))
    with pytest.raises(MissingInputError):
        list(corpus_texts([tmp_path / "missing"], max_files=None))


def test_pad_rows_masks_by_length_not_by_the_fill_value():
    ids, mask = pad_rows([[5, 0, 7], [], [9]], PAD_ID)  # a real token 0 equals the fill
    assert ids.tolist() == [[5, 0, 7], [0, 0, 0], [9, 0, 0]]
    assert mask.tolist() == [[True, True, True], [False, False, False], [True, False, False]]
    labels, _ = pad_rows([[1], [2, 3]], -100, width=4)
    assert labels.tolist() == [[1, -100, -100, -100], [2, 3, -100, -100]]
    empty, empty_mask = pad_rows([[]], PAD_ID)
    assert empty.shape == (1, 1) and not empty_mask.any()
