"""Code role labeller: real byte-level tokens (with Ġ prefixes) get the right slots."""

import pytest

from voltx.engine.code_roles import ROLE_OTHER, label_tokens
from voltx.engine.tokenizer import train_bpe

SNIPPET = '''import os
from typing import List

def my_func(a, b=2):
    """Return the sum if x (ok)."""
    total = a + b  # add (them)
    for i in range(a):
        if i == b:
            total += i
    try:
        x = os.path.join("a(", b)
    except ValueError:
        pass
    return total * 2
'''


@pytest.fixture(scope="module")
def tok():
    # Enough repetition that keywords become single "Ġkeyword" tokens.
    return train_bpe([SNIPPET] * 30 + ["while x <= 3:\n    y = x\n"] * 10, vocab_size=500)


def labelled(tok, text):
    tokens = tok.encode(text, add_special_tokens=False).tokens
    return list(zip(tokens, label_tokens(tokens)))


def first(pairs, token):
    return next(label for t, label in pairs if t == token)


def test_keywords_with_byte_level_prefixes(tok):
    pairs = labelled(tok, SNIPPET)
    end_doc = max(i for i, (t, _) in enumerate(pairs) if '"""' in t)
    code = pairs[end_doc + 1 :]  # after the docstring: its "Return"/"if" are not code
    tokens = [t for t, _ in pairs]
    # The tokens the original Rust bug could never match really carry the Ġ prefix.
    for kw in ("Ġreturn", "Ġfor", "Ġif", "Ġtry", "Ġexcept", "Ġimport", "Ġ="):
        assert kw in tokens, kw
    assert first(pairs, "def") == 0
    assert first(pairs, "Ġimport") == 5
    assert first(pairs, "from") == 5
    assert first(code, "Ġreturn") == 3
    assert first(code, "Ġfor") == 4
    assert first(code, "Ġif") == 6
    assert first(code, "Ġtry") == 7
    assert first(code, "Ġexcept") == 7
    assert first(code, "Ġ=") == 1
    assert first(code, "Ġ+=") == 1
    assert first(code, "Ġ==") == ROLE_OTHER


def test_spans(tok):
    pairs = labelled(tok, SNIPPET)
    i_def = next(i for i, (t, _) in enumerate(pairs) if t == "def")
    # name tokens after def stay 0 until "(", then the argument span is 2
    j = i_def + 1
    while "(" not in pairs[j][0]:
        assert pairs[j][1] == 0, pairs[j]
        j += 1
    assert j - i_def >= 2
    while ")" not in pairs[j][0]:
        assert pairs[j][1] == 2, pairs[j]
        j += 1
    assert pairs[j][1] == 2
    # everything from return to the newline is 3, the newline ends it
    i_ret = max(i for i, (t, _) in enumerate(pairs) if t == "Ġreturn")
    tail = pairs[i_ret:]
    k = next(i for i, (t, _) in enumerate(tail) if "Ċ" in t)
    assert k >= 3 and all(label == 3 for _, label in tail[:k])
    assert tail[k][1] == ROLE_OTHER


def test_strings_and_comments_are_not_code():
    # Keywords and parentheses inside a docstring or comment must not open spans.
    tokens = ["x", "Ġ=", "Ġ1", "Ċ", 'Ġ"""', "Return", "Ġx", "Ġif", "Ġ(", "ok", '"""', "Ċ",
              "Ġ#", "Ġfor", "Ġ(", "a", "Ċ", "y", "Ġ=", "Ġ'", "(", "'", "Ċ", "z", "Ġ=", "Ġ2"]
    got = label_tokens(tokens)
    assert got == [15, 1, 15, 15] + [15] * 8 + [15] * 5 + [15, 1, 15, 15, 15, 15] + [15, 1, 15]


def test_hand_written_tokens():
    tokens = ["class", "ĠFoo", "(", "Base", "):", "Ċ", "ĠĠĠ", "Ġwhile", "Ġx", "Ġ<=", "Ġ3", ":", "Ċ",
              "ĠĠĠ", "Ġy", "Ġ**=", "Ġ2", "Ċ", "Ġz", "Ġ:=", "Ġf", "(", "a", ",", "Ġb", ")", "Ċ",
              "Ġraise", "ĠE", "Ġfrom", "Ġe", "Ċ", "Ġx", "<", "=", "y", "Ċ", "Ġx", "+", "=", "1"]
    got = label_tokens(tokens)
    expected = [0, 0, 2, 2, 2, 15, 15, 4, 15, 15, 15, 15, 15,
                15, 15, 1, 15, 15, 15, 1, 15, 2, 2, 2, 2, 2, 15,
                15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 1, 1, 15]
    assert got == expected


def test_split_keyword_and_word_grouping():
    # "format" split as Ġfor + mat is not a loop; "import" split as i + mport is an import.
    assert label_tokens(["Ġfor", "mat", "(", "x", ")"]) == [15, 15, 2, 2, 2]
    assert label_tokens(["i", "mport", "Ġos"]) == [5, 5, 15]
    assert label_tokens([]) == []
