"""Heuristic role labels for code tokens: which frame slot each BPE token belongs to.

The code encoder learns to route tokens to slots with a role head; these labels are
its supervision.  Port of the original Rust ``role_labels.rs`` with its bug fixed: the
original compared raw byte-level tokens (``"Ġdef"``) against keywords (``"def"``), so
nothing after the first token of a line ever matched.  Here every token is decoded
from the byte-level alphabet (``Ġ`` space, ``Ċ`` newline, ``ĉ`` tab, ...), trimmed and
lowercased before matching.

Code slot meanings (label = slot index):

====  =====================================  ======================================
Slot  Meaning                                Tokens
====  =====================================  ======================================
S0    function / class name                  ``def``/``class`` and the name after it
S1    operation / assignment                 ``=``, ``+=``, ``:=``, ... (not ``==``)
S2    arguments                              everything inside ``( ... )``
S3    return value                           ``return`` to the end of its statement
S4    loops                                  ``for``, ``while``
S5    imports / algorithm pattern            ``import``, statement-initial ``from``
S6    conditionals                           ``if``, ``elif``, ``else``
S7    exception handling                     ``try``, ``except``, ``finally``, ``catch``
S15   other                                  everything else (``ROLE_OTHER``)
====  =====================================  ======================================

Beyond the original, three refinements keep the heuristics honest on real code:
string literals and comments are found with a small lexer so that parentheses or
words inside them ("Return the value if ...") are not mistaken for code; a word split
across BPE tokens (``Ġfor`` + ``mat``) is matched as the whole word ``format``; and an
operator split across tokens (``<`` + ``=``) is judged as the whole operator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ROLE_NAME, ROLE_ASSIGN, ROLE_ARGS, ROLE_RETURN = 0, 1, 2, 3
ROLE_LOOP, ROLE_IMPORT, ROLE_COND, ROLE_EXCEPT = 4, 5, 6, 7
ROLE_OTHER = 15

_KEYWORD_ROLES = {
    "for": ROLE_LOOP, "while": ROLE_LOOP,
    "import": ROLE_IMPORT, "from": ROLE_IMPORT,
    "if": ROLE_COND, "elif": ROLE_COND, "else": ROLE_COND,
    "try": ROLE_EXCEPT, "except": ROLE_EXCEPT, "finally": ROLE_EXCEPT, "catch": ROLE_EXCEPT,
}
# Keywords that can only begin a statement: seeing one means any open parenthesis
# count is stale (an unbalanced bracket earlier), so we reset rather than let one
# stray "(" label the rest of the file as arguments.
_STATEMENT_KEYWORDS = {"def", "class", "return", "import", "try", "except", "finally", "while"}
ASSIGN_OPS = ("=", "+=", "-=", "*=", "/=", "//=", "%=", "**=", "|=", "&=", "^=", ">>=", "<<=", ":=", "@=")
_ASSIGN_BY_LENGTH = sorted(ASSIGN_OPS, key=len, reverse=True)
_OP_CHARS = frozenset("=+-*/%|&^<>:!@~")

# Comments and string literals (incl. unterminated ones, which end at newline / EOF).
# finditer takes the leftmost match, so a quote inside a comment or a '#' inside a
# string is handled correctly.
_STRING_OR_COMMENT = re.compile(
    r"""(?P<comment>\#[^\n]*)
      | (?P<string>
          \"\"\"(?:\\.|[^\\])*?(?:\"\"\"|\Z)
        | '''(?:\\.|[^\\])*?(?:'''|\Z)
        | "(?:\\.|[^"\\\n])*(?:"|(?=\n)|\Z)
        | '(?:\\.|[^'\\\n])*(?:'|(?=\n)|\Z)
        )""",
    re.VERBOSE | re.DOTALL,
)
_CODE, _STRING, _COMMENT = 0, 1, 2


def _byte_decoder() -> dict[str, int]:
    """Inverse of GPT-2's bytes_to_unicode, the alphabet byte-level BPE tokens use."""
    visible = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    mapping = {b: chr(b) for b in visible}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return {ch: b for b, ch in mapping.items()}


_BYTE_OF = _byte_decoder()


def _token_text(token: str) -> str:
    """The source text a byte-level token stands for, one char per byte (latin-1).

    Characters outside the byte alphabet (a non-byte-level tokenizer, special tokens)
    pass through as their UTF-8 bytes.  One char per byte keeps offsets simple; the
    lexer only needs ASCII structure, and bytes >= 0x80 count as identifier chars.
    """
    out = bytearray()
    for ch in token:
        b = _BYTE_OF.get(ch)
        if b is None:
            out += ch.encode("utf-8")
        else:
            out.append(b)
    return out.decode("latin-1")


def _is_ident(text: str) -> bool:
    return bool(text) and all(c.isalnum() or c == "_" or ord(c) >= 0x80 for c in text)


@dataclass
class _Piece:
    code: str  # the token's characters that are code (strings/comments removed)
    has_string: bool
    has_comment: bool
    newline: bool  # a newline outside any string literal

    @property
    def word(self) -> str:
        return self.code.strip().lower()


def _analyse(tokens: list[str]) -> list[_Piece]:
    texts = [_token_text(t) for t in tokens]
    full = "".join(texts)
    classes = bytearray(len(full))  # _CODE everywhere by default
    for m in _STRING_OR_COMMENT.finditer(full):
        kind = _COMMENT if m.group("comment") is not None else _STRING
        classes[m.start() : m.end()] = bytes([kind]) * (m.end() - m.start())
    pieces = []
    pos = 0
    for text in texts:
        cls = classes[pos : pos + len(text)]
        pos += len(text)
        if cls.count(_CODE) == len(text):
            code = text
        else:
            code = "".join(ch for ch, c in zip(text, cls) if c == _CODE)
        pieces.append(_Piece(code, _STRING in cls, _COMMENT in cls, "\n" in code))
    return pieces


def _word_groups(pieces: list[_Piece]) -> list[tuple[int, str] | None]:
    """For tokens that are part of an identifier/keyword: (group start, whole word)."""
    groups: list[tuple[int, str] | None] = [None] * len(pieces)
    i = 0
    while i < len(pieces):
        p = pieces[i]
        core = p.code.lstrip()
        if not (_is_ident(core) and not p.has_string and not p.has_comment):
            i += 1
            continue
        j, word = i, core
        while j + 1 < len(pieces):
            nxt = pieces[j + 1]
            # A continuation starts with no whitespace and is pure identifier text.
            if nxt.has_string or nxt.has_comment or not _is_ident(nxt.code):
                break
            j += 1
            word += nxt.code
        for k in range(i, j + 1):
            groups[k] = (i, word.lower())
        i = j + 1
    return groups


def _operator_run(pieces: list[_Piece], i: int) -> str:
    """The whole operator that token ``i``'s leading operator chars belong to."""
    core = pieces[i].code.strip()
    run = ""
    for c in core:
        if c not in _OP_CHARS:
            break
        run += c
    if not run:
        return ""
    code = pieces[i].code
    # Glue on operator chars of directly adjacent tokens (no whitespace between).
    if code[:1] in _OP_CHARS and i > 0:
        prev = pieces[i - 1].code
        k = len(prev)
        while k > 0 and prev[k - 1] in _OP_CHARS:
            k -= 1
        run = prev[k:] + run
    if run == core and code[-1:] in _OP_CHARS and i + 1 < len(pieces):
        nxt = pieces[i + 1].code
        k = 0
        while k < len(nxt) and nxt[k] in _OP_CHARS:
            k += 1
        run += nxt[:k]
    return run


def _is_assignment(run: str) -> bool:
    for op in _ASSIGN_BY_LENGTH:
        if run.startswith(op):
            # "=" followed by "=" is "==", not an assignment; "=-1" still is one.
            return not run[len(op) :].startswith("=")
    return False


def label_tokens(tokens: list[str]) -> list[int]:
    """One role label (0..15) per byte-level BPE token string, see the module table."""
    pieces = _analyse(tokens)
    groups = _word_groups(pieces)
    labels: list[int] = []
    depth = 0  # open parentheses of the current argument span
    in_name = False  # between def/class and the following "(" or ":"
    in_return = False
    line_start = True
    group_label = ROLE_OTHER

    for i, p in enumerate(pieces):
        s = p.word
        group = groups[i]
        if group is not None and group[0] != i:  # continuation of a word already labelled
            labels.append(group_label)
            continue
        opens, closes = s.count("("), s.count(")")

        if not s:  # whitespace, string literal or comment only
            if p.has_comment:
                label = ROLE_OTHER
                in_return = False  # "#" ends a return statement
            elif in_name and not p.newline:
                label = ROLE_NAME
            elif depth > 0:
                label = ROLE_ARGS  # includes newlines inside a multi-line call
            elif in_return and not p.newline:
                label = ROLE_RETURN
            else:
                label = ROLE_OTHER
        elif in_name:
            if "(" in s or ":" in s:
                in_name = False
                label = ROLE_ARGS if "(" in s else ROLE_OTHER
                depth = max(0, depth + opens - closes)
            else:
                label = ROLE_NAME
        elif group is not None and group[1] in ("def", "class"):
            label, in_name, in_return, depth = ROLE_NAME, True, False, 0
        elif group is not None and group[1] == "return":
            label, in_return, depth = ROLE_RETURN, True, 0
        elif in_return:
            if s.startswith(";"):
                label, in_return = ROLE_OTHER, False
            else:
                label = ROLE_RETURN
                depth = max(0, depth + opens - closes)
        elif group is not None and group[1] in _STATEMENT_KEYWORDS:
            depth = 0
            label = _KEYWORD_ROLES[group[1]]
        elif depth > 0:
            label = ROLE_ARGS
            depth = max(0, depth + opens - closes)
        elif group is not None and group[1] in _KEYWORD_ROLES:
            # "from" only imports at the start of a statement ("raise X from e" does not).
            label = ROLE_OTHER if group[1] == "from" and not line_start else _KEYWORD_ROLES[group[1]]
        elif _is_assignment(_operator_run(pieces, i)):
            label = ROLE_ASSIGN
            depth = max(0, depth + opens - closes)  # e.g. a merged "=(" token
        elif opens:
            label = ROLE_ARGS
            depth = max(0, depth + opens - closes)
        else:
            label = ROLE_OTHER
            depth = max(0, depth - closes)  # a stray ")" cannot make depth negative

        if group is not None:
            group_label = label
        labels.append(label)
        if p.newline:
            line_start, in_name = True, False
            if depth == 0:
                in_return = False
        elif s:
            line_start = s.endswith(";")
            if line_start and depth == 0:
                in_return = False
    return labels

