"""The built-in LVM data: real ordered English text, embedded offline by a voltx encoder.

The text is the documentation every CPython ships, from two sources, each article's sentences in
the order they are written: the docstrings of the standard library's functions (voltx's
built-in translator corpus, :func:`voltx.data.code_pairs.extract_stdlib_pairs`; one article per
module, its functions in file order) and the language reference's topics (``pydoc_data.topics``,
``help()``'s pages; one article per topic). The articles are laid out in a fixed order that mixes
the two sources (:func:`article_order`: by a hash of each article's name), so the ordered split's
validation part is new articles of the same mixture as the training part, as in the handoff's
data (ordered Wikipedia articles, one genre); sources laid end to end made it a different genre
(the language reference after function docstrings), which measures transfer to a new genre, not
the sequence a model learns. Each sentence is embedded by a voltx
:class:`~voltx.engine.cnn_frame_encoder.CnnFrameEncoder` that is frozen and seeded (a random
projection of byte-level BPE n-grams, the same weights for a given seed): the ``summary``
vector (256-d), centred on the training part's mean and L2-normalised. Centring matters: every
sentence's raw summary shares one direction (cosine ~0.9 between unrelated sentences), which
would make any predictor look good; after it, cosine measures what differs between sentences.

Everything is a pure function of (Python version, seed, vocabulary size): a resumed run
rebuilds the same vectors bit for bit.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np

MIN_WORDS, MAX_WORDS = 5, 60
MAX_TOKENS = 48
ENCODER = {"embed_dim": 64, "hidden_dim": 128, "slot_dim": 256}
"""The frozen encoder's size: half the trained one's width (a random projection needs no more, and
it embeds the corpus four times faster); 256-d vectors as every voltx frame slot."""
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\"'])")
PLAIN_WORD = re.compile(r"[(\"'‘“]*[A-Za-z][a-z’'-]*[)\"'’”.,;:!?]*")


def topic_sentences() -> tuple[list[str], np.ndarray, list[str]]:
    """Sentences of the Python documentation topics in order, their topic (article) ids, and the
    articles' names (by id).

    Code examples and grammar rules are left out: a paragraph counts as prose when most of its
    words are plain words (``class Foo:`` / ``x ::= y`` / ``>>> f()`` are not)."""
    from pydoc_data.topics import topics

    sentences: list[str] = []
    ids: list[int] = []
    names = sorted(topics)
    for article, name in enumerate(names):
        for paragraph in re.split(r"\n\s*\n", topics[name]):
            words = paragraph.split()
            if ">>>" in paragraph or "::=" in paragraph or len(words) < MIN_WORDS or \
                    sum(PLAIN_WORD.fullmatch(w) is not None for w in words) < 0.7 * len(words):
                continue
            for sentence in SENTENCE_END.split(" ".join(words)):
                if MIN_WORDS <= len(sentence.split()) <= MAX_WORDS and sentence[-1] in ".!?:)":
                    sentences.append(sentence)
                    ids.append(article)
    return sentences, np.asarray(ids, dtype=np.int64), [f"topic:{name}" for name in names]


def docstring_sentences() -> tuple[list[str], np.ndarray, list[str]]:
    """Sentences of the standard library's function docstrings, one article per module, in file
    order; their article ids, and the articles' names (by id)."""
    from voltx.data.code_pairs import extract_stdlib_pairs

    sentences: list[str] = []
    ids: list[int] = []
    modules: dict[str, int] = {}
    for pair in extract_stdlib_pairs():
        article = modules.setdefault(pair.source, len(modules))
        for sentence in SENTENCE_END.split(" ".join(pair.docstring.split())):
            if MIN_WORDS <= len(sentence.split()) <= MAX_WORDS and sentence[-1] in ".!?:)":
                sentences.append(sentence)
                ids.append(article)
    return sentences, np.asarray(ids, dtype=np.int64), [f"module:{name}" for name in modules]


def embed_sentences(sentences: list[str], seed: int, vocab_size: int, fit_rows: int) -> np.ndarray:
    """[M, 256] float32: the frozen seeded encoder's summaries, centred on the mean of the
    first ``fit_rows`` (the training part: nothing of the validation part leaks into it), unit length."""
    import torch

    from voltx.engine.cnn_frame_encoder import CnnFrameEncoder
    from voltx.engine.tokenizer import encode_batch, train_bpe

    tok = train_bpe(sentences[:fit_rows], vocab_size=vocab_size, min_frequency=2)
    with torch.random.fork_rng(devices=[]):  # the run's own random stream is left as it was
        torch.manual_seed(seed)
        encoder = CnnFrameEncoder(vocab_size=tok.get_vocab_size(), max_seq_len=MAX_TOKENS, **ENCODER).eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(sentences), 256):
            ids, mask = encode_batch(tok, sentences[start:start + 256], MAX_TOKENS)
            out.append(encoder(ids, mask).summary)
    vectors = torch.cat(out).double()
    vectors = vectors - vectors[:fit_rows].mean(dim=0)
    return torch.nn.functional.normalize(vectors, dim=-1).float().numpy()


def article_order(ids: np.ndarray, names: list[str]) -> np.ndarray:
    """Row order that lays the articles (contiguous runs of ``ids``; ``names[id]``) out by a hash of
    their names, each article's rows kept together and in order: a fixed mixture of the sources,
    the same on every machine."""
    def key(article: int) -> bytes:
        return hashlib.blake2b(names[article].encode(), digest_size=8).digest()

    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    ends = np.r_[starts[1:], len(ids)]
    runs = sorted(zip(starts, ends), key=lambda run: key(int(ids[run[0]])))
    return np.concatenate([np.arange(a, b) for a, b in runs]) if runs else np.zeros(0, dtype=np.int64)


def builtin_sequences(context: int, seed: int, vocab_size: int, valid_fraction: float):
    """The built-in corpus as :class:`voltx_lvm.lvm_data.Sequences`."""
    from voltx_lvm.lvm_data import Sequences, article_windows

    doc_sentences, doc_ids, doc_names = docstring_sentences()
    topic_texts, topic_ids, topic_names = topic_sentences()
    sentences = doc_sentences + topic_texts
    ids = np.concatenate([doc_ids, topic_ids + len(doc_names)])
    rows = article_order(ids, doc_names + topic_names)
    sentences, ids = [sentences[r] for r in rows], ids[rows]
    windows = article_windows(ids, context)
    # the encoder's tokenizer and the centring see only rows before the first validation window's target
    cut = int((1.0 - valid_fraction) * len(windows))
    fit_rows = int(windows[cut, -1]) if cut < len(windows) else len(sentences)
    vectors = embed_sentences(sentences, seed, vocab_size, fit_rows)
    about = (f"built-in: {len(doc_sentences):,} stdlib docstring sentences ({len(np.unique(doc_ids))} modules) and "
             f"{len(topic_texts):,} of {len(np.unique(topic_ids))} Python documentation topics, articles mixed; "
             f"frozen seeded CnnFrameEncoder (seed {seed}), d = {vectors.shape[1]}")
    return Sequences(vectors, windows, about)
