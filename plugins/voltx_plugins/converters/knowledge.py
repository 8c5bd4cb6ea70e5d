"""Phase F2 (world knowledge) converters -> ``triples``: ConceptNet 5, CN-100K, ATOMIC 2020, WordNet.

* ``conceptnet5``  ConceptNet 5 assertions CSV (tab-separated: assertion uri, relation
  ``/r/IsA``, start ``/c/en/dog/n``, end ``/c/en/animal``, JSON info with ``weight``), or the
  Hub ``conceptnet5`` config ``conceptnet5`` (``rel``, ``arg1``, ``arg2``, ``weight``). Both ends
  must be in ``--language`` (when given); terms lose ``/c/xx/`` and the POS/sense suffix and
  underscores become spaces; the relation loses ``/r/``.
* ``cn100k``  CN-100K (Li et al. 2016): ``relation head tail`` per line; dev/test files with a
  fourth 0/1 label column keep label-1 rows only (label 0 rows are generated negatives).
* ``atomic``  ATOMIC 2020 TSV ``head relation tail`` (train/dev/test.tsv), or its system-eval
  layout ``head @@ relation<TAB>tail1| tail2| ...`` (system_eval/test.tsv: one triple per
  tail), tails ``none`` skipped in both; or the legacy Hub ``allenai/atomic`` rows (``event``
  plus one list column per relation).
* ``wordnet``  WordNet 3.0 WNDB ``data.noun`` / ``data.verb`` / ``data.adj`` / ``data.adv``
  (Debian ``wordnet-base``: /usr/share/wordnet): one triple per semantic pointer of the kinds
  below, between the first lemmas of the two synsets, read "tail is the <relation> of head"
  (``dog hypernym canine``, ``car part_meronym wheel``, ``wheel part_holonym car``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Iterator

from voltx.data.converter import Converter, RawRow, RowError, numbered_lines, require_format, require_str, tsv_rows
from voltx.data.formats import Triple
from voltx.errors import DataError




def _triple(head, relation, tail, weight=None, source=None) -> Triple:
    kw = {"head": head, "relation": relation, "tail": tail}
    if weight is not None:
        kw["weight"] = weight
    if source is not None:
        kw["source"] = source
    return Triple(**kw)


# ---------------------------------------------------------------------------------------
# ConceptNet 5


def _concept(uri, field: str) -> tuple[str, str]:
    """(language, term) of ``/c/<lang>/<term>[/<pos>[/...]]``."""
    if not isinstance(uri, str) or not uri.startswith("/c/"):
        raise RowError(f"expected a concept URI /c/<language>/<term>, got {uri!r}", field)
    parts = uri.split("/")
    if len(parts) < 4 or not parts[2] or not parts[3]:
        raise RowError(f"expected a concept URI /c/<language>/<term>, got {uri!r}", field)
    return parts[2], parts[3].replace("_", " ").strip()


def _relation(uri, field: str = "relation") -> str:
    if not isinstance(uri, str) or not uri.startswith("/r/") or len(uri) <= 3:
        raise RowError(f"expected a relation URI /r/<Name>, got {uri!r}", field)
    return uri[3:]


def _weight(value, field: str = "weight") -> float:
    if isinstance(value, bool):
        raise RowError(f"expected a number, got {value!r}", field)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise RowError(f"expected a number, got {value!r}", field) from None


class ConceptNetConverter(Converter):
    name = "conceptnet5"
    formats = ("triples",)
    hub_name = "conceptnet5"
    hub_config = "conceptnet5"
    splits = ("train",)

    def read_local(self, paths: list[Path], split: str) -> Iterator[RawRow]:
        """The assertions CSV (``conceptnet-assertions-5.7.0.csv``; tab-separated, 5 fields)."""
        def ok(f):
            return len(f) == 5 and f[1].startswith("/r/") and f[2].startswith("/c/")
        for path in paths:
            yield from tsv_rows(Path(path), ok, "a ConceptNet 5 assertions file (uri, /r/relation, "
                                                 "/c/start, /c/end, json info)")

    def convert(self, row: RawRow, fmt: str, language: str | None) -> Iterable:
        require_format(self, fmt)
        d = row.data
        if "fields" in d:
            f = d["fields"]
            if len(f) != 5:
                raise RowError(f"expected 5 tab-separated fields (uri, relation, start, end, "
                               f"info), got {len(f)}", "fields")
            rel, start, end = f[1], f[2], f[3]
            try:
                info = json.loads(f[4])
            except json.JSONDecodeError as e:
                raise RowError(f"not JSON ({e.msg})", "info") from None
            if not isinstance(info, dict):
                raise RowError(f"expected a JSON object, got {f[4][:40]!r}", "info")
            weight = _weight(info.get("weight", 1.0), "info.weight")
            start_field, end_field = "start", "end"
        else:
            rel, start, end = d.get("rel"), d.get("arg1"), d.get("arg2")
            weight = _weight(d.get("weight", 1.0))
            start_field, end_field = "arg1", "arg2"
        relation = _relation(rel, "relation" if "fields" in d else "rel")
        if not isinstance(end, str) or not end.startswith("/c/"):
            # edges to external URLs (/r/ExternalURL) carry no concept at the end
            if relation == "ExternalURL":
                return []
        lang_a, head = _concept(start, start_field)
        lang_b, tail = _concept(end, end_field)
        if language and (lang_a != language or lang_b != language):
            return []
        if not head or not tail:
            raise RowError(f"empty term in {start!r} -> {end!r}", start_field if not head else end_field)
        return [_triple(head, relation, tail, weight, "conceptnet5")]


# ---------------------------------------------------------------------------------------
# CN-100K


class Cn100kConverter(Converter):
    name = "cn100k"
    formats = ("triples",)
    hub_name = None
    splits = ("train", "dev", "test")

    def read_local(self, paths: list[Path], split: str) -> Iterator[RawRow]:
        def ok(f):
            return len(f) in (3, 4) and all(x.strip() for x in f[:3]) and (
                len(f) == 3 or f[3].strip() in ("0", "1"))
        for path in paths:
            yield from tsv_rows(Path(path), ok, "a CN-100K file (relation, head, tail[, label])")

    def convert(self, row: RawRow, fmt: str, language: str | None) -> Iterable:
        require_format(self, fmt)
        f = row.data.get("fields")
        if not isinstance(f, list) or len(f) not in (3, 4):
            raise RowError(f"expected 3 tab-separated fields (relation, head, tail) or 4 with a "
                           f"0/1 label, got {len(f) if isinstance(f, list) else f!r}", "fields")
        relation = require_str(f[0], "relation")
        head = require_str(f[1], "head")
        tail = require_str(f[2], "tail")
        if len(f) == 4:
            label = f[3].strip()
            if label not in ("0", "1"):
                raise RowError(f"expected label 0 or 1, got {f[3]!r}", "label")
            if label == "0":
                return []
        return [_triple(head, relation, tail, source="cn100k")]


# ---------------------------------------------------------------------------------------
# ATOMIC 2020

ATOMIC_HUB_RELATIONS = ("oEffect", "oReact", "oWant", "xAttr", "xEffect", "xIntent", "xNeed",
                        "xReact", "xWant")


def _is_none(tail: str) -> bool:
    return tail.strip().lower() == "none"


ATOMIC_LAYOUTS = ("'head<TAB>relation<TAB>tail' (train.tsv, dev.tsv, test.tsv) or "
                  "'head @@ relation<TAB>tail1| tail2| ...' (system_eval/test.tsv)")


def _atomic_relation(value: str) -> str:
    relation = require_str(value, "relation")
    if " " in relation:
        raise RowError(f"expected one relation name like 'xNeed', got {relation!r}", "relation")
    return relation


def _atomic_plain(f: list[str]) -> list[Triple]:
    """``head<TAB>relation<TAB>tail``: one triple, none for a ``none`` tail."""
    head, relation, tail = require_str(f[0], "head"), _atomic_relation(f[1]), require_str(f[2], "tail")
    return [] if _is_none(tail) else [_triple(head, relation, tail, source="atomic")]


def _atomic_system_eval(f: list[str]) -> list[Triple]:
    """``head @@ relation<TAB>tail1| tail2| ...``: one triple per tail that is not ``none``."""
    head, _, relation = f[0].rpartition(" @@ ")
    head, relation = require_str(head, "head"), _atomic_relation(relation)
    tails = [t.strip() for t in f[1].split("|")]
    if "" in tails:
        raise RowError(f"tail {tails.index('') + 1} of {len(tails)} is empty; expected 'tail1| tail2| ...'", "tails")
    return [_triple(head, relation, t, source="atomic") for t in tails if not _is_none(t)]


class AtomicConverter(Converter):
    name = "atomic"
    formats = ("triples",)
    hub_name = "allenai/atomic"   # legacy ATOMIC (2019); local files are ATOMIC 2020 TSVs
    splits = ("train", "validation", "test")

    def read_local(self, paths: list[Path], split: str) -> Iterator[RawRow]:
        def ok(f):
            plain = len(f) == 3 and bool(f[0].strip()) and bool(f[1].strip()) and " " not in f[1].strip()
            return plain or (len(f) == 2 and " @@ " in f[0] and bool(f[1].strip()))
        for path in paths:
            yield from tsv_rows(Path(path), ok, f"an ATOMIC 2020 file: expected {ATOMIC_LAYOUTS}")

    def convert(self, row: RawRow, fmt: str, language: str | None) -> Iterable:
        require_format(self, fmt)
        d = row.data
        if "fields" in d:
            f = d["fields"]
            if len(f) == 3:
                return _atomic_plain(f)
            if len(f) == 2 and " @@ " in f[0]:
                return _atomic_system_eval(f)
            raise RowError(f"expected {ATOMIC_LAYOUTS}; got {len(f)} tab-separated field(s)"
                           + ("" if len(f) != 2 else " and no ' @@ '"), "fields")
        head = require_str(d.get("event"), "event")
        out = []
        for rel in ATOMIC_HUB_RELATIONS:
            tails = d.get(rel) or []
            if isinstance(tails, str):
                try:
                    tails = json.loads(tails)
                except json.JSONDecodeError:
                    raise RowError(f"expected a list of tails, got {tails[:40]!r}", rel) from None
            if not isinstance(tails, list):
                raise RowError(f"expected a list of tails, got {type(tails).__name__}", rel)
            for tail in tails:
                if isinstance(tail, str) and tail.strip() and not _is_none(tail):
                    out.append(_triple(head, rel, tail.strip(), source="atomic"))
        return out


# ---------------------------------------------------------------------------------------
# WordNet (WNDB data files)

WORDNET_RELATIONS = {
    "@": "hypernym", "@i": "instance_hypernym", "~": "hyponym", "~i": "instance_hyponym",
    "%p": "part_meronym", "%m": "member_meronym", "%s": "substance_meronym",
    "#p": "part_holonym", "#m": "member_holonym", "#s": "substance_holonym",
}
_POS_FILE = {"n": "noun", "v": "verb", "a": "adj", "s": "adj", "r": "adv"}


def _wn_lemma(word: str) -> str:
    """``fine_arts`` -> ``fine arts``; adjective markers ``(a)`` ``(p)`` ``(ip)`` dropped."""
    if word.endswith(")") and "(" in word:
        word = word[: word.rindex("(")]
    return word.replace("_", " ")


def _wn_quick(line: str) -> tuple[str, str] | None:
    """(offset, first lemma) of a synset line, or None when it does not look like one."""
    parts = line.split(" ", 5)
    if len(parts) < 6 or not (len(parts[0]) == 8 and parts[0].isdigit()):
        return None
    return parts[0], _wn_lemma(parts[4])


def _wn_parse(line: str) -> dict:
    """Fields of a synset line; RowError naming the field at fault."""
    body = line.split(" | ", 1)[0].split()
    if len(body) < 4:
        raise RowError("expected 'offset lex_filenum ss_type w_cnt word lex_id ... p_cnt ...'",
                       "synset")
    offset, _, ss_type, w_cnt = body[:4]
    if len(offset) != 8 or not offset.isdigit():
        raise RowError(f"expected an 8-digit byte offset, got {offset!r}", "offset")
    if ss_type not in _POS_FILE:
        raise RowError(f"expected ss_type n, v, a, s or r, got {ss_type!r}", "ss_type")
    try:
        n_words = int(w_cnt, 16)
    except ValueError:
        raise RowError(f"expected a 2-digit hex word count, got {w_cnt!r}", "w_cnt") from None
    i = 4 + 2 * n_words
    if n_words < 1 or len(body) <= i:
        raise RowError(f"w_cnt is {n_words} but the line has too few words", "w_cnt")
    words = [_wn_lemma(body[4 + 2 * k]) for k in range(n_words)]
    p_cnt = body[i]
    if not p_cnt.isdigit():
        raise RowError(f"expected a 3-digit pointer count, got {p_cnt!r}", "p_cnt")
    n_ptr = int(p_cnt)
    ptrs = body[i + 1: i + 1 + 4 * n_ptr]
    if len(ptrs) != 4 * n_ptr:
        raise RowError(f"p_cnt is {n_ptr} but the line has {len(ptrs) // 4} pointers", "p_cnt")
    pointers = []
    for k in range(n_ptr):
        sym, off, pos, st = ptrs[4 * k: 4 * k + 4]
        if len(off) != 8 or not off.isdigit() or pos not in _POS_FILE or len(st) != 4:
            raise RowError(f"pointer {k + 1} is {' '.join(ptrs[4 * k: 4 * k + 4])!r}, expected "
                           "'symbol offset pos source/target'", "pointers")
        pointers.append((sym, off, pos, st))
    return {"offset": offset, "pos": ss_type, "words": words, "pointers": pointers}


class WordNetConverter(Converter):
    name = "wordnet"
    formats = ("triples",)
    hub_name = None
    splits = ("train",)

    def read_local(self, paths: list[Path], split: str) -> Iterator[RawRow]:
        """WNDB ``data.<pos>`` files (a directory means its four data files)."""
        files: list[Path] = []
        for path in paths:
            path = Path(path)
            if path.is_dir():
                files += [path / f"data.{p}" for p in ("noun", "verb", "adj", "adv")
                          if (path / f"data.{p}").exists()]
            else:
                files.append(path)
        # offset -> first lemma, per data file; pointers resolve through the file of their pos
        lemmas: dict[str, dict[str, str]] = {}

        def index(file: Path) -> dict[str, str]:
            table: dict[str, str] = {}
            seen_synset = False
            for n, line in numbered_lines(file):
                if line.startswith("  ") or not line.strip():
                    continue                 # license header lines start with two spaces
                q = _wn_quick(line)
                if q is None:
                    if not seen_synset and n > 60:
                        break
                    continue
                seen_synset = True
                table[q[0]] = q[1]
            if not seen_synset:
                raise DataError(f"{file}: not a WordNet WNDB data file (no synset lines "
                                "'offset lex_filenum ss_type w_cnt word ...')")
            return table

        def table_for(pos: str, near: Path) -> dict[str, str] | None:
            name = f"data.{_POS_FILE[pos]}"
            if name not in lemmas:
                for f in files:
                    if f.name == name:
                        lemmas[name] = index(f)
                        break
                else:
                    sibling = near.parent / name
                    lemmas[name] = index(sibling) if sibling.exists() else {}
            return lemmas[name]

        for file in files:
            if file.name not in lemmas:
                lemmas[file.name] = index(file)
            resolve = {p: (lambda p=p, file=file: table_for(p, file)) for p in _POS_FILE}
            for n, line in numbered_lines(file):
                if line.startswith("  ") or not line.strip():
                    continue
                yield RawRow({"line": line, "resolve": resolve}, f"{file}:{n}")

    def convert(self, row: RawRow, fmt: str, language: str | None) -> Iterable:
        require_format(self, fmt)
        syn = _wn_parse(row.data["line"])
        resolve = row.data.get("resolve") or {}
        head = syn["words"][0]
        out = []
        for sym, off, pos, _st in syn["pointers"]:
            relation = WORDNET_RELATIONS.get(sym)
            if relation is None:
                continue
            table = resolve[pos]() if pos in resolve else None
            tail = table.get(off) if table else None
            if tail is None:
                raise RowError(f"pointer {sym} {off} {pos}: no synset at offset {off} in "
                               f"data.{_POS_FILE[pos]}", "pointers")
            out.append(_triple(head, relation, tail, source="wordnet"))
        return out
