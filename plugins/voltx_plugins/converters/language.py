"""Phase F1 (lexical grounding) converters: FrameNet, PropBank, STS-B and PAWS.

* ``framenet``  FrameNet 1.7 XML as NLTK installs it (``fulltext/*.xml``, ``lu/lu*.xml``)
  -> ``slot_annotated``, one record per annotated predicate (annotation set with a Target).
* ``propbank``  CoNLL-2012 / OntoNotes 5 (Hub ``conll2012_ontonotesv5``: one document per row,
  ``sentences[].words`` + ``sentences[].srl_frames[{verb, frames: BIO tags}]``; locally a JSONL
  dump of those rows) -> ``slot_annotated``, one record per predicate.
* ``propbank_conllu``  CoNLL-U with PropBank columns (Universal Propositions: column 11 is the
  roleset, columns 12+ one argument column per predicate; arguments label head words)
  -> ``slot_annotated``, one record per predicate.
* ``stsb``  STS Benchmark (Hub ``sentence-transformers/stsb`` with score 0-1, or the original
  TSV with score 0-5) -> ``paraphrase`` with ``score`` on the 0-5 scale.
* ``paws``  PAWS labeled_final (Hub or TSV with header) -> ``paraphrase`` with ``label``.

Slot rules (one table for all SRL sources, from ``voltx.data.formats``): a role maps through
``PROPBANK_TO_SLOT`` / ``FRAMENET_TO_SLOT``; a role missing from the table goes to S15. The
first role to claim a slot keeps it (later roles for the same slot are dropped); ``C-X``
continuation arguments are appended to X's words; ``R-X`` reference arguments (relative
pronouns) are skipped, since the argument they refer to is annotated itself.
"""

from __future__ import annotations

import json
import xml.parsers.expat
from pathlib import Path
from typing import Iterable, Iterator

from voltx.data.converter import Converter, RawRow, RowError, numbered_lines, require_format, require_str, tsv_rows
from voltx.data.formats import FRAMENET_TO_SLOT, PROPBANK_TO_SLOT, Paraphrase, SlotAnnotated
from voltx.errors import DataError

OTHER_SLOT = "S15"


# ---------------------------------------------------------------------------------------
# shared helpers




def _make(cls, **kw):
    return cls(**{k: v for k, v in kw.items() if v is not None})






class _Slots:
    """Collects role -> words in sentence order under the first-claim rule."""

    def __init__(self, table: dict):
        self.table = table
        self.slots: dict[str, str] = {}
        self.owner: dict[str, str] = {}        # slot -> role that claimed it

    def slot_of(self, role: str) -> str:
        slot = self.table.get(role)
        if slot is None and role.upper() != role:
            slot = self.table.get(role.upper())
        return slot or OTHER_SLOT

    def add(self, role: str, words: str) -> None:
        words = words.strip()
        if not words:
            return
        if role.startswith("R-"):
            return
        if role.startswith("C-"):
            base = role[2:]
            slot = self.slot_of(base)
            if self.owner.get(slot) == base:
                self.slots[slot] = f"{self.slots[slot]} {words}"
                return
            role = base
        slot = self.slot_of(role)
        if slot in self.slots:
            return
        self.slots[slot] = words
        self.owner[slot] = role

    def result(self) -> dict[str, str]:
        return dict(sorted(self.slots.items(), key=lambda kv: int(kv[0][1:])))


# ---------------------------------------------------------------------------------------
# FrameNet 1.7 (NLTK XML)

_FN_NS = "http://framenet.icsi.berkeley.edu"


def _fn_local(tag: str) -> str:
    return tag.rsplit(" ", 1)[-1] if " " in tag else tag.rsplit("}", 1)[-1]


def _parse_framenet(path: Path) -> list[tuple[int, dict]]:
    """Sentences of one FrameNet XML file as (line, row dict); DataError if not FrameNet XML."""
    sentences: list[tuple[int, dict]] = []
    state: dict = {"root": None, "lu": None, "frame": None, "sent": None, "aset": None,
                   "layer": None, "in_text": False}
    parser = xml.parsers.expat.ParserCreate(namespace_separator=" ")

    def start(tag, attrs):
        name = _fn_local(tag)
        if state["root"] is None:
            state["root"] = name
            if name not in ("fullTextAnnotation", "lexUnit"):
                raise DataError(f"{path}: not a FrameNet annotation file (root element <{name}>, "
                                "expected <fullTextAnnotation> or <lexUnit>)")
            if name == "lexUnit":
                state["lu"] = attrs.get("name")
                state["frame"] = attrs.get("frame")
            return
        if name == "sentence":
            state["sent"] = {"id": attrs.get("ID"), "text": "", "annotation_sets": []}
            sentences.append((parser.CurrentLineNumber, state["sent"]))
        elif name == "text" and state["sent"] is not None and state["aset"] is None:
            state["in_text"] = True
        elif name == "annotationSet" and state["sent"] is not None:
            state["aset"] = {"id": attrs.get("ID"), "status": attrs.get("status"),
                             "frame": attrs.get("frameName", state["frame"]),
                             "lu": attrs.get("luName", state["lu"]),
                             "target": [], "fes": []}
            state["sent"]["annotation_sets"].append(state["aset"])
        elif name == "layer" and state["aset"] is not None:
            state["layer"] = attrs.get("name")
        elif name == "label" and state["aset"] is not None:
            label = {"name": attrs.get("name"), "start": attrs.get("start"),
                     "end": attrs.get("end"), "itype": attrs.get("itype")}
            if state["layer"] == "Target":
                state["aset"]["target"].append(label)
            elif state["layer"] == "FE":
                state["aset"]["fes"].append(label)

    def end(tag):
        name = _fn_local(tag)
        if name == "text":
            state["in_text"] = False
        elif name == "annotationSet":
            state["aset"] = None
        elif name == "layer":
            state["layer"] = None
        elif name == "sentence":
            state["sent"] = None

    def chars(data):
        if state["in_text"]:
            state["sent"]["text"] += data

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    try:
        with open(path, "rb") as f:
            parser.ParseFile(f)
    except xml.parsers.expat.ExpatError as e:
        raise DataError(f"{path}:{e.lineno}: not well-formed FrameNet XML ({e})") from None
    if state["root"] is None:
        raise DataError(f"{path}: empty file, expected FrameNet XML")
    return sentences


def _fn_span(label: dict, text: str) -> str:
    """Text of a FrameNet label; start/end are character offsets, end inclusive."""
    for key in ("start", "end"):
        v = label.get(key)
        if v is None or not str(v).isdigit():
            raise RowError(f"label {label.get('name')!r}: {key} must be a character offset, "
                           f"got {v!r}", key)
    start, end = int(label["start"]), int(label["end"])
    if end < start or end >= len(text):
        raise RowError(f"label {label.get('name')!r}: span {start}..{end} outside the "
                       f"{len(text)}-character sentence", "end")
    return text[start:end + 1]


class FrameNetConverter(Converter):
    name = "framenet"
    formats = ("slot_annotated",)
    hub_name = None          # read through NLTK's framenet_v17 files
    splits = ("train",)

    def read_local(self, paths: list[Path], split: str) -> Iterator[RawRow]:
        for path in paths:
            path = Path(path)
            if path.is_dir():
                files = sorted(p for p in path.rglob("*.xml"))
            else:
                files = [path]
            for file in files:
                if path.is_dir() and file.parent.name not in ("fulltext", "lu"):
                    continue   # frame/*.xml, frRelation.xml ... describe frames, not sentences
                for line, row in _parse_framenet(file):
                    yield RawRow(row, f"{file}:{line}")

    def convert(self, row: RawRow, fmt: str, language: str | None) -> Iterable:
        require_format(self, fmt)
        data = row.data
        text = require_str(data.get("text"), "text")
        raw_text = data["text"]
        out = []
        for aset in data.get("annotation_sets") or []:
            if not aset.get("target"):
                continue       # UNANN / PENN / NER sets carry no predicate
            slots = _Slots(FRAMENET_TO_SLOT)
            for t in aset["target"]:
                _fn_span(t, raw_text)
            target = " ".join(_fn_span(t, raw_text)
                              for t in sorted(aset["target"], key=lambda t: int(t["start"])))
            slots.slots["S1"] = target
            slots.owner["S1"] = "Target"
            fes = [fe for fe in aset.get("fes") or [] if not fe.get("itype")]
            for fe in fes:
                if not fe.get("name"):
                    raise RowError("FE label without a name", "name")
                _fn_span(fe, raw_text)
            for fe in sorted(fes, key=lambda fe: int(fe["start"])):
                slots.add(fe["name"], _fn_span(fe, raw_text))
            out.append(_make(SlotAnnotated, text=text, slots=slots.result(),
                             frame=aset.get("frame"), predicate=aset.get("lu") or target,
                             source="framenet"))
        return out


# ---------------------------------------------------------------------------------------
# PropBank via CoNLL-2012 (Hub schema)


def _bio_spans(tags: list[str], words: list[str]) -> list[tuple[str, str]]:
    """(role, words) for each B-/I- run of a BIO tag sequence; RowError on a bad tag."""
    spans: list[tuple[str, list[str]]] = []
    for i, tag in enumerate(tags):
        if tag in ("O", "*", "_", ""):
            continue
        if tag.startswith("B-"):
            spans.append((tag[2:], [words[i]]))
        elif tag.startswith("I-"):
            if spans and spans[-1][0] == tag[2:] and tags[i - 1] not in ("O", "*", "_", ""):
                spans[-1][1].append(words[i])
            else:      # I- without its B-: start a span anyway (as conlleval does)
                spans.append((tag[2:], [words[i]]))
        else:
            raise RowError(f"tag {i + 1} is {tag!r}, expected O, B-<role> or I-<role>", "frames")
    return [(role, " ".join(ws)) for role, ws in spans]


class PropBankConverter(Converter):
    name = "propbank"
    formats = ("slot_annotated",)
    hub_name = "conll2012_ontonotesv5"
    hub_config = "english_v4"
    splits = ("train", "validation", "test")

    def read_local(self, paths: list[Path], split: str) -> Iterator[RawRow]:
        """A JSONL dump of Hub rows (one document per line)."""
        for path in paths:
            path = Path(path)
            seen_ok = False
            for n, line in numbered_lines(path):
                if not line.strip():
                    continue
                try:
                    doc = json.loads(line)
                except json.JSONDecodeError as e:
                    if not seen_ok:
                        raise DataError(f"{path}:{n}: not a JSONL dump of conll2012_ontonotesv5 "
                                        f"rows ({e.msg})") from None
                    doc = {"_bad_json": e.msg}
                if not seen_ok and not (isinstance(doc, dict) and "sentences" in doc):
                    raise DataError(f"{path}:{n}: not a conll2012_ontonotesv5 row (expected an "
                                    "object with 'sentences')")
                seen_ok = True
                yield RawRow(doc, f"{path}:{n}")

    def convert(self, row: RawRow, fmt: str, language: str | None) -> Iterable:
        require_format(self, fmt)
        data = row.data
        if "_bad_json" in data:
            raise RowError(f"not JSON ({data['_bad_json']})", "json")
        sentences = data.get("sentences")
        if not isinstance(sentences, list):
            raise RowError("expected a list of sentences", "sentences")
        out = []
        for s in sentences:
            words = s.get("words") if isinstance(s, dict) else None
            if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
                raise RowError("expected a list of words", "words")
            lemmas = s.get("predicate_lemmas") or [None] * len(words)
            senses = s.get("predicate_framenet_ids") or [None] * len(words)
            text = " ".join(words)
            for frame in s.get("srl_frames") or []:
                tags = frame.get("frames") if isinstance(frame, dict) else None
                if not isinstance(tags, list) or len(tags) != len(words):
                    raise RowError(f"expected {len(words)} BIO tags (one per word), got "
                                   f"{len(tags) if isinstance(tags, list) else tags!r}", "frames")
                spans = _bio_spans(tags, words)
                slots = _Slots(PROPBANK_TO_SLOT)
                vi = next((i for i, t in enumerate(tags) if t == "B-V"), None)
                for role, ws in spans:
                    slots.add(role, ws)
                if not slots.slots:
                    continue
                roleset = None
                if vi is not None and vi < len(lemmas) and lemmas[vi]:
                    sense = senses[vi] if vi < len(senses) else None
                    roleset = f"{lemmas[vi]}.{sense}" if sense else lemmas[vi]
                out.append(_make(SlotAnnotated, text=text, slots=slots.result(), frame=roleset,
                                 predicate=frame.get("verb") or None, source="propbank"))
        return out


# ---------------------------------------------------------------------------------------
# CoNLL-U with PropBank columns (Universal Propositions)


class PropBankConlluConverter(Converter):
    name = "propbank_conllu"
    formats = ("slot_annotated",)
    hub_name = None
    splits = ("train", "dev", "test")

    def read_local(self, paths: list[Path], split: str) -> Iterator[RawRow]:
        for path in paths:
            path = Path(path)
            checked = False
            comments: dict[str, str] = {}
            tokens: list[list[str]] = []
            start = 0
            for n, line in numbered_lines(path):
                if not line.strip():
                    if tokens:
                        yield RawRow({"comments": comments, "tokens": tokens}, f"{path}:{start}")
                    comments, tokens, start = {}, [], 0
                    continue
                if not start:
                    start = n
                if line.startswith("#"):
                    key, _, value = line[1:].partition("=")
                    comments[key.strip()] = value.strip()
                    continue
                cols = line.split("\t")
                if not checked:
                    if len(cols) < 10 or not cols[0].split("-")[0].split(".")[0].isdigit():
                        raise DataError(f"{path}:{n}: not CoNLL-U (expected 10+ tab-separated "
                                        f"columns starting with a token id, got {line[:80]!r})")
                    checked = True
                if "-" in cols[0] or "." in cols[0]:
                    continue     # multiword-token ranges and empty nodes carry no arguments
                tokens.append(cols)
            if tokens:
                yield RawRow({"comments": comments, "tokens": tokens}, f"{path}:{start}")

    def convert(self, row: RawRow, fmt: str, language: str | None) -> Iterable:
        require_format(self, fmt)
        tokens = row.data.get("tokens") or []
        comments = row.data.get("comments") or {}
        for i, cols in enumerate(tokens):
            if len(cols) < 11:
                raise RowError(f"token {i + 1} has {len(cols)} columns, expected 11 or more "
                               "(10 CoNLL-U columns and the PropBank roleset)", "columns")
        forms = [cols[1] for cols in tokens]
        text = comments.get("text") or " ".join(forms)
        preds = [i for i, cols in enumerate(tokens) if cols[10] not in ("_", "")]
        out = []
        for k, p in enumerate(preds):
            col = 11 + k
            if any(len(cols) <= col for cols in tokens):
                raise RowError(f"{len(preds)} predicates but fewer argument columns (no column "
                               f"{col + 1} for {tokens[p][10]!r})", "arguments")
            slots = _Slots(PROPBANK_TO_SLOT)
            for i, cols in enumerate(tokens):
                role = cols[col].strip()
                if role in ("_", ""):
                    continue
                slots.add(role, forms[i])
            if not slots.slots:
                continue
            out.append(_make(SlotAnnotated, text=text, slots=slots.result(), frame=tokens[p][10],
                             predicate=forms[p], source="propbank_conllu"))
        return out


# ---------------------------------------------------------------------------------------
# STS Benchmark


def _score(value, field: str, top: float) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise RowError(f"expected a number 0-{top:g}, got {value!r}", field) from None
    if not 0.0 <= x <= top:
        raise RowError(f"expected a number 0-{top:g}, got {value!r}", field)
    return x


class StsbConverter(Converter):
    name = "stsb"
    formats = ("paraphrase",)
    hub_name = "sentence-transformers/stsb"
    splits = ("train", "validation", "test")

    def read_local(self, paths: list[Path], split: str) -> Iterator[RawRow]:
        """Original TSV: genre, file, year, id, score 0-5, sentence1, sentence2 [, extra x2]."""
        def ok(fields):
            if len(fields) < 7:
                return False
            try:
                float(fields[4])
                return True
            except ValueError:
                return False
        for path in paths:
            yield from tsv_rows(Path(path), ok, "an STS Benchmark TSV file (genre, file, year, "
                                                 "id, score, sentence1, sentence2)")

    def convert(self, row: RawRow, fmt: str, language: str | None) -> Iterable:
        require_format(self, fmt)
        d = row.data
        if "fields" in d:
            f = d["fields"]
            if len(f) not in (7, 9):
                raise RowError(f"expected 7 tab-separated fields (genre, file, year, id, score, "
                               f"sentence1, sentence2; 9 with the source fields), got {len(f)}",
                               "fields")
            score = _score(f[4], "score", 5.0)
            a, b = require_str(f[5], "sentence1"), require_str(f[6], "sentence2")
        else:
            score = round(_score(d.get("score"), "score", 1.0) * 5.0, 4)
            a = require_str(d.get("sentence1"), "sentence1")
            b = require_str(d.get("sentence2"), "sentence2")
        return [_make(Paraphrase, a=a, b=b, score=score, source="stsb")]

    def convert_batch(self, columns: dict[str, list], fmt: str, language: str | None) -> dict[str, list] | None:
        """Hub rows ``{sentence1, sentence2, score 0-1}`` -> paraphrase columns (the records
        :meth:`convert` makes). None (per-row path, precise errors) unless every row is plain."""
        if fmt not in self.formats or "fields" in columns:
            return None
        a, b, raw = columns.get("sentence1"), columns.get("sentence2"), columns.get("score")
        if a is None or b is None or raw is None:
            return None
        for col in (a, b):
            if set(map(type, col)) != {str} or not all(col) or any(map(str.isspace, col)):
                return None
        if not set(map(type, raw)) <= {int, float} or not raw or min(raw) < 0.0 or max(raw) > 1.0:
            return None  # also NaN/inf-free: min/max bounds fail for inf; NaN is caught below
        scores = [round(float(x) * 5.0, 4) for x in raw]
        if any(x != x for x in scores):
            return None
        return {"a": a, "b": b, "score": scores, "source": ["stsb"] * len(a)}


# ---------------------------------------------------------------------------------------
# PAWS


def _label(value) -> int:
    if isinstance(value, bool) or str(value).strip() not in ("0", "1"):
        raise RowError(f"expected label 0 or 1, got {value!r}", "label")
    return int(str(value).strip())


class PawsConverter(Converter):
    name = "paws"
    formats = ("paraphrase",)
    hub_name = "google-research-datasets/paws"
    hub_config = "labeled_final"
    splits = ("train", "validation", "test")

    def read_local(self, paths: list[Path], split: str) -> Iterator[RawRow]:
        """TSV with header ``id sentence1 sentence2 label`` (PAWS-Wiki labeled_final)."""
        def ok(fields):
            return len(fields) == 4 and fields[3].strip() in ("0", "1")
        for path in paths:
            yield from tsv_rows(Path(path), ok, "a PAWS TSV file (id, sentence1, sentence2, "
                                 "label)", skip_header=lambda f: f[:1] == ["id"])

    def convert(self, row: RawRow, fmt: str, language: str | None) -> Iterable:
        require_format(self, fmt)
        d = row.data
        if "fields" in d:
            f = d["fields"]
            if len(f) != 4:
                raise RowError(f"expected 4 tab-separated fields (id, sentence1, sentence2, "
                               f"label), got {len(f)}", "fields")
            d = dict(zip(("id", "sentence1", "sentence2", "label"), f))
        label = _label(d.get("label"))
        a = require_str(d.get("sentence1"), "sentence1")
        b = require_str(d.get("sentence2"), "sentence2")
        return [_make(Paraphrase, a=a, b=b, label=label, source="paws")]

    def convert_arrow(self, table, fmt: str, language: str | None):
        """Hub rows (``sentence1``, ``sentence2`` strings, integer ``label``) -> the records of
        :meth:`convert`, column-wise: both sentences stripped (``utf8_trim_whitespace`` strips
        what ``str.strip`` does). A label other than 0/1, a null or a blank sentence fails the
        core's column checks, and that batch is converted (and reported) row by row."""
        import pyarrow as pa
        import pyarrow.compute as pc

        names = table.column_names
        if fmt not in self.formats or not {"sentence1", "sentence2", "label"} <= set(names):
            return None
        a, b, label = table.column("sentence1"), table.column("sentence2"), table.column("label")
        if not (pa.types.is_string(a.type) and pa.types.is_string(b.type) and pa.types.is_integer(label.type)):
            return None  # e.g. labels as text: the per-row path parses them
        return pa.table({"a": pc.utf8_trim_whitespace(a), "b": pc.utf8_trim_whitespace(b), "label": label,
                         "source": pa.repeat("paws", table.num_rows)})
