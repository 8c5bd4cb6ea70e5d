"""(code, docstring) pairs: the paired corpus for code <-> language training.

Two sources:

* :func:`read_codesearchnet_jsonl` reads CodeSearchNet-style JSONL (``.jsonl`` or
  ``.jsonl.gz``), one ``{"code": ..., "docstring": ..., "func_name": ...}`` per line;
* :func:`extract_stdlib_pairs` builds an offline default corpus from the running
  interpreter's own standard library, so training works with no download.

In both, the docstring is removed from the code (CodeSearchNet's ``code`` includes it):
left in, a contrastive model would just learn to match the copy of the text.
:func:`split_train_valid` splits deterministically by a stable hash of each pair's
identity, so the split survives re-ordering, process restarts and corpus growth.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import importlib.util
import json
import logging
import os
import sys
import sysconfig
import tempfile
import warnings
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import platformdirs

from voltx.errors import DataError, MissingInputError

log = logging.getLogger(__name__)

STDLIB_SKIP_DIRS = frozenset(
    {"site-packages", "dist-packages", "test", "tests", "idlelib", "lib2to3", "turtledemo", "__pycache__"}
)
MAX_DOCSTRING_CHARS = 512
# Bump when the extraction rules change so stale caches are rebuilt.
_CACHE_FORMAT = 1
_JSON_EXAMPLE = '{"code": ..., "docstring": ...}'


@dataclass(frozen=True)
class CodePair:
    code: str
    docstring: str
    func_name: str
    language: str = "python"
    source: str = ""


class PairList(list):
    """A list of CodePair that also says what was skipped while reading (reason -> count)."""

    def __init__(self, pairs=(), skipped: Counter | None = None):
        super().__init__(pairs)
        self.skipped: Counter = skipped if skipped is not None else Counter()


# -- docstring removal ----------------------------------------------------------------


def _docstring_node(func: ast.AST) -> ast.Expr | None:
    body = getattr(func, "body", None)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        if isinstance(body[0].value.value, str):
            return body[0]
    return None


def _splice_out(lines: list[str], node: ast.stmt) -> list[str]:
    """``lines`` with statement ``node`` removed (ast columns are UTF-8 byte offsets)."""
    first = lines[node.lineno - 1].encode("utf-8")
    last = lines[node.end_lineno - 1].encode("utf-8")
    head = first[: node.col_offset].decode("utf-8", "replace")
    tail = last[node.end_col_offset :].decode("utf-8", "replace").lstrip()
    if tail.startswith(";"):  # '"""doc"""; x = 1' -> 'x = 1'
        tail = tail[1:].lstrip()
    if head.strip():
        merged = [head.rstrip() + (" " + tail if tail else "")]  # 'def f(): "doc"; ...'
    elif tail:
        merged = [head + tail]
    else:
        merged = []  # the usual case: the docstring occupied whole lines
    return lines[: node.lineno - 1] + merged + lines[node.end_lineno :]


def _is_trivial(func: ast.AST, doc: ast.Expr | None) -> bool:
    """True if the body, docstring aside, is only pass / ... / raise NotImplementedError."""
    for stmt in func.body:
        if stmt is doc or isinstance(stmt, ast.Pass):
            continue
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and stmt.value.value is Ellipsis:
            continue
        if isinstance(stmt, ast.Raise) and stmt.exc is not None:
            exc = stmt.exc.func if isinstance(stmt.exc, ast.Call) else stmt.exc
            if isinstance(exc, ast.Name) and exc.id == "NotImplementedError":
                continue
        return False
    return True


def _clean_docstring(doc: str) -> str:
    """First paragraph of a cleaned docstring, whitespace collapsed, capped in length."""
    para = doc.strip().split("\n\n", 1)[0]
    text = " ".join(para.split())
    if len(text) > MAX_DOCSTRING_CHARS:
        text = text[:MAX_DOCSTRING_CHARS].rsplit(" ", 1)[0]
    return text


def _parse(source: str) -> ast.Module | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # invalid escape sequences etc. in old code
        try:
            return ast.parse(source)
        except (SyntaxError, ValueError, RecursionError):
            return None


def strip_docstring(code: str) -> tuple[str, bool]:
    """Remove the leading docstring of the function/class in ``code``.

    Returns (code, trivial): code unchanged if it does not parse or has no docstring;
    ``trivial`` is True when the definition's body is empty apart from the docstring.
    """
    tree = _parse(code)
    if tree is None or not tree.body:
        return code, False
    func = tree.body[0]
    if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return code, False
    doc = _docstring_node(func)
    trivial = _is_trivial(func, doc) if not isinstance(func, ast.ClassDef) else len(func.body) <= 1
    if doc is None:
        return code, trivial
    return "\n".join(_splice_out(code.splitlines(), doc)), trivial


# -- CodeSearchNet ----------------------------------------------------------------------


def read_codesearchnet_jsonl(path: str | os.PathLike[str], max_examples: int | None = None) -> PairList:
    """Read CodeSearchNet JSONL (optionally gzipped) into CodePairs.

    The docstring is reduced to its first paragraph with whitespace collapsed (as for
    the stdlib corpus) and removed from the code.  Rows with empty code/docstring, or
    whose function body is only its docstring, are skipped and counted in
    ``result.skipped``.  Malformed rows raise DataError naming
    ``file:line``; a missing file raises MissingInputError; a file with no usable
    rows raises DataError.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(
            f"{path}: no such file. Point the code corpus at a CodeSearchNet .jsonl file, "
            "or leave it unset to use the built-in standard-library corpus"
        )
    pairs = PairList()
    rows = 0
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            if max_examples is not None and len(pairs) >= max_examples:
                break
            if not raw.strip():
                continue
            rows += 1
            where = f"{path}:{lineno}"
            try:
                row = json.loads(raw)
            except UnicodeDecodeError as e:
                raise DataError(f"{where}: not valid UTF-8 ({e.reason})") from None
            except json.JSONDecodeError as e:
                raise DataError(
                    f"{where}: not valid JSON ({e.msg}); each line must be one JSON object like {_JSON_EXAMPLE}"
                ) from None
            if not isinstance(row, dict):
                raise DataError(f"{where}: expected a JSON object like {_JSON_EXAMPLE}, got {type(row).__name__}")
            for field in ("code", "docstring"):
                if field not in row:
                    raise DataError(f"{where}: missing field {field!r}; each row needs \"code\" and \"docstring\"")
                if not isinstance(row[field], str):
                    raise DataError(f"{where}: field {field!r} must be a string, got {type(row[field]).__name__}")
            docstring = _clean_docstring(row["docstring"])
            if not row["code"].strip() or not docstring:
                pairs.skipped["empty code or docstring"] += 1
                continue
            code, trivial = strip_docstring(row["code"])
            if trivial:
                pairs.skipped["body is only a docstring"] += 1
                continue
            origin = "/".join(str(row[k]) for k in ("repo", "path") if row.get(k))
            pairs.append(
                CodePair(
                    code=code,
                    docstring=docstring,
                    func_name=str(row.get("func_name") or ""),
                    language=str(row.get("language") or "python"),
                    source=origin or f"{path.name}:{lineno}",
                )
            )
    if not pairs:
        reasons = ", ".join(f"{n} {why}" for why, n in pairs.skipped.items()) or "no rows"
        raise DataError(f"{path}: no usable (code, docstring) pairs ({rows} rows read; skipped: {reasons})")
    if pairs.skipped:
        log.info("%s: read %d pairs, skipped %s", path, len(pairs), dict(pairs.skipped))
    return pairs


# -- standard-library corpus -------------------------------------------------------------


def _functions(body: list[ast.stmt], prefix: str = ""):
    """Yield (qualified name, node) for every function and method, in source order."""
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield f"{prefix}{node.name}", node
            yield from _functions(node.body, f"{prefix}{node.name}.<locals>.")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node.body, f"{prefix}{node.name}.")
        else:  # functions defined under if/try/with blocks keep the enclosing prefix
            for field in ("body", "orelse", "finalbody"):
                child = getattr(node, field, None)
                if isinstance(child, list):
                    yield from _functions(child, prefix)
            for handler in getattr(node, "handlers", ()):
                yield from _functions(handler.body, prefix)


def _dedent(lines: list[str], def_line: str) -> list[str]:
    """Remove the ``def`` line's indentation from every line that has it.

    Not textwrap.dedent: a multi-line string flush with column 0 inside a method
    would stop it dedenting anything, leaving code that does not parse.
    """
    indent = def_line[: len(def_line) - len(def_line.lstrip())]
    return [line[len(indent) :] if line.startswith(indent) else line for line in lines]


def _file_pairs(path: Path, rel: str) -> list[CodePair]:
    try:
        source = importlib.util.decode_source(path.read_bytes())  # honours coding cookies
    except (OSError, UnicodeDecodeError, SyntaxError):
        return []
    tree = _parse(source)
    if tree is None:
        return []
    lines = source.splitlines()
    out = []
    for qualname, node in _functions(tree.body):
        doc = _docstring_node(node)
        if doc is None or _is_trivial(node, doc):
            continue
        docstring = _clean_docstring(ast.get_docstring(node, clean=True) or "")
        if not docstring:
            continue
        # Segment from the `def` line (decorators excluded) with the docstring spliced out.
        seg = lines[node.lineno - 1 : node.end_lineno]
        head = seg[0].encode("utf-8")[: node.col_offset]
        if head.strip():  # `class A: def f(): ...` -- keep byte offsets, drop the prefix
            seg[0] = " " * len(head) + seg[0].encode("utf-8")[len(head) :].decode("utf-8")
        shifted = ast.Expr(lineno=doc.lineno - node.lineno + 1, end_lineno=doc.end_lineno - node.lineno + 1,
                           col_offset=doc.col_offset, end_col_offset=doc.end_col_offset)
        code = "\n".join(_dedent(_splice_out(seg, shifted), seg[0])).strip("\n")
        # A docstring quoted elsewhere in the code (e.g. in a warning) would leak the answer.
        if " ".join(docstring.split()) in " ".join(code.split()):
            continue
        out.append(CodePair(code=code, docstring=docstring, func_name=qualname, source=rel))
    return out


def _stdlib_files(root: Path):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in STDLIB_SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            if name.endswith(".py"):
                yield Path(dirpath) / name


def _cache_path(cache_dir: Path, root: Path) -> Path:
    key = hashlib.blake2b(f"{sys.version}\0{root.resolve()}".encode(), digest_size=8).hexdigest()
    tag = f"py{sys.version_info.major}{sys.version_info.minor}"
    return cache_dir / f"stdlib_pairs-{tag}-{key}-v{_CACHE_FORMAT}.jsonl"


def _read_cache(path: Path) -> list[CodePair] | None:
    try:
        with path.open(encoding="utf-8") as f:
            header = json.loads(f.readline())
            pairs = [CodePair(**json.loads(line)) for line in f]
        if header.get("format") != _CACHE_FORMAT or header.get("count") != len(pairs):
            return None  # truncated or from another version
        return pairs
    except (OSError, ValueError, TypeError, AttributeError):
        return None  # missing or corrupt: rebuild


def _write_cache(path: Path, pairs: list[CodePair]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps({"format": _CACHE_FORMAT, "count": len(pairs)}) + "\n")
            for p in pairs:
                f.write(json.dumps(asdict(p), ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    except OSError as e:  # a read-only cache dir only costs time, never the run
        log.warning("could not write stdlib pair cache %s: %s", path, e)


def extract_stdlib_pairs(
    root: str | os.PathLike[str] | None = None,
    max_examples: int | None = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
) -> list[CodePair]:
    """(code, docstring) pairs for every documented, non-trivial function under ``root``.

    ``root`` defaults to the running interpreter's standard library.  Test suites,
    IDLE, lib2to3, turtledemo and site-packages are skipped.  Results are cached as
    JSONL in ``cache_dir`` (default: the user cache dir for "voltx"), keyed by Python
    version and root; a corrupt cache is rebuilt.  ``max_examples`` keeps the first
    N pairs in (sorted path, source) order.
    """
    root = Path(root) if root is not None else Path(sysconfig.get_paths()["stdlib"])
    if not root.is_dir():
        raise MissingInputError(f"{root}: Python source directory not found")
    cache = _cache_path(Path(cache_dir) if cache_dir else Path(platformdirs.user_cache_dir("voltx")), root)
    pairs = _read_cache(cache) if use_cache else None
    if pairs is None:
        pairs, seen = [], set()
        for path in _stdlib_files(root):
            rel = path.relative_to(root).as_posix()
            for pair in _file_pairs(path, rel):
                if (pair.code, pair.docstring) not in seen:  # duplicates are false negatives
                    seen.add((pair.code, pair.docstring))
                    pairs.append(pair)
        if use_cache:
            _write_cache(cache, pairs)
    if not pairs:
        raise DataError(f"{root}: no documented Python functions found")
    return pairs[:max_examples] if max_examples is not None else pairs


# -- splitting ------------------------------------------------------------------------------


def _unit_hash(pair: CodePair, seed: int) -> float:
    digest = hashlib.blake2b(f"{seed}\0{pair.source}\0{pair.func_name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def split_train_valid(
    pairs: list[CodePair], valid_fraction: float = 0.1, seed: int = 42
) -> tuple[list[CodePair], list[CodePair]]:
    """Deterministic split by a stable hash of (source, func_name, seed).

    Python's ``hash()`` is salted per process, so it would reshuffle the split every
    run.  Pairs sharing (source, func_name) always land together.  With at least two
    pairs and a fraction in (0, 1), neither side is left empty: the pair with the
    smallest (largest) hash is moved over if needed.
    """
    if not 0.0 <= valid_fraction < 1.0:
        raise ValueError(f"valid_fraction must be in [0, 1), got {valid_fraction}")
    scored = [(_unit_hash(p, seed), p) for p in pairs]
    train = [p for h, p in scored if h >= valid_fraction]
    valid = [p for h, p in scored if h < valid_fraction]
    if valid_fraction > 0 and len(pairs) >= 2:
        if not valid:
            pick = min(scored, key=lambda hp: hp[0])[1]
            train = [p for p in train if p is not pick]
            valid = [pick]
        elif not train:
            pick = max(scored, key=lambda hp: hp[0])[1]
            valid = [p for p in valid if p is not pick]
            train = [pick]
    return train, valid
