"""The built-in corpus: real ordered text, articles contiguous, embedded reproducibly."""

from __future__ import annotations

import numpy as np

from voltx_lvm.builtin_corpus import article_order, docstring_sentences, embed_sentences, topic_sentences
from lvm_support import isolated  # noqa: F401 (autouse fixture)


def test_topic_sentences_are_ordered_prose_in_contiguous_articles():
    from pydoc_data.topics import topics

    sentences, ids, names = topic_sentences()
    assert len(sentences) == len(ids) > 1000 and len(names) == len(topics)
    assert np.all(np.diff(ids) >= 0)  # each article's sentences together, articles in order
    assert not any(">>>" in s or "::=" in s for s in sentences)
    assert all(5 <= len(s.split()) <= 60 for s in sentences)
    first = " ".join(topics[sorted(topics)[int(ids[0])]].split())
    assert first.index(sentences[0]) < first.index(sentences[1])  # the text as written, in its order


def test_docstring_sentences_are_one_article_per_module_in_file_order(monkeypatch):
    import voltx.data.code_pairs as code_pairs

    pairs = [code_pairs.CodePair("", doc, name, source=src) for src, name, doc in (
        ("a.py", "f", "Return the first item of a list. Raise ValueError when the list is empty."),
        ("a.py", "g", "Short one."),  # under five words: left out
        ("b.py", "h", "Open the file at the given path and return its handle."),
    )]
    monkeypatch.setattr(code_pairs, "extract_stdlib_pairs", lambda: pairs)  # the real one parses the whole stdlib
    sentences, ids, names = docstring_sentences()
    assert sentences == ["Return the first item of a list.", "Raise ValueError when the list is empty.",
                         "Open the file at the given path and return its handle."]
    assert ids.tolist() == [0, 0, 1] and names == ["module:a.py", "module:b.py"]


def test_articles_are_mixed_by_name_each_kept_whole_and_in_order():
    ids = np.array([0, 0, 0, 1, 1, 2, 3, 3])
    names = ["module:a", "module:b", "topic:x", "topic:y"]
    rows = article_order(ids, names)
    assert sorted(rows.tolist()) == list(range(8))
    laid = ids[rows]
    assert np.count_nonzero(laid[1:] != laid[:-1]) == 3  # each article contiguous
    for article in range(4):
        assert np.all(np.diff(rows[laid == article]) == 1)  # its sentences in their written order
    assert laid.tolist() != ids.tolist()  # a fixed order by name, not the sources end to end
    assert np.array_equal(rows, article_order(ids, names))


def test_embedding_is_a_pure_function_of_the_seed():
    sentences = topic_sentences()[0][:80]
    a = embed_sentences(sentences, seed=3, vocab_size=300, fit_rows=64)
    b = embed_sentences(sentences, seed=3, vocab_size=300, fit_rows=64)
    c = embed_sentences(sentences, seed=4, vocab_size=300, fit_rows=64)
    assert a.shape == (80, 256) and a.dtype == np.float32
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    # centred on the fitted rows: no shared direction left (raw summaries share one, cosine ~0.9)
    assert abs(float((a[:64] @ a[:64].T).mean())) < 0.05
