"""Exact arithmetic for the MathEngine strand: a restricted parser and an int/Fraction evaluator.

A Hard Strand is an exact tool, so numbers are Python ints and ``fractions.Fraction``
(``16777216 + 1`` is 16777217, ``0.1 + 0.2`` is 3/10), never floats. Expressions are parsed
with :mod:`ast` and only numeric literals, ``+ - * / // % **``, parentheses, unary ``+``/``-``
and ``sqrt(x)`` / ``abs(x)`` are evaluated; anything else is refused (no ``eval``).

Sizes are bounded before they are computed: an intermediate value may have at most
``MAX_WORKING_DIGITS`` digits (a power is refused from an estimate, before it is raised) and
an answer at most ``MAX_RESULT_DIGITS`` (it must fit the Result slot's text, 512 bytes).
Irrational results (``sqrt(2)``, ``2 ** 0.5``) are the one inexact case: they come back as a
``ROUND_DIGITS``-digit decimal marked ``exact=False`` and shown with "≈".

Torch-free on purpose: the stub translator and the plugin import it, and a CLI's ``--help``
must not pay for torch.
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass
from decimal import Decimal, localcontext
from fractions import Fraction

from voltx.errors import DataError

MAX_RESULT_DIGITS = 400
"""Digits an answer may have (numerator and denominator together); bounded by the frame's text."""
MAX_WORKING_DIGITS = 4000
"""Digits an intermediate value may have; below Python's 4300-digit int/str conversion limit."""
MAX_EXPRESSION_CHARS = 10_000
ROUND_DIGITS = 20
"""Significant digits of the decimal shown beside a fraction, and of an irrational result."""


class MathInputError(DataError):
    """The expression cannot be answered exactly (malformed, division by zero, too large)."""


@dataclass(frozen=True)
class Value:
    """A number the evaluator produced: exact unless a root was irrational."""

    number: Fraction
    exact: bool = True

    def exact_form(self) -> str:
        """``46``, ``-7/2``: the value as int or reduced fraction (the approximation for inexact ones)."""
        n = self.number
        return str(n.numerator) if n.denominator == 1 else f"{n.numerator}/{n.denominator}"

    def text(self) -> str:
        """The answer as shown: ``46``, ``3.5``, ``1/3 ≈ 0.33333333333333333333``, ``≈ 1.4142…``."""
        if not self.exact:
            return f"≈ {approximate(self.number)}"
        decimal = terminating_decimal(self.number)
        if decimal is not None and digits(decimal) <= MAX_RESULT_DIGITS:
            return decimal
        return f"{self.exact_form()} ≈ {approximate(self.number)}"


@dataclass(frozen=True)
class Evaluation:
    expression: str
    value: Value


def digits(text: str) -> int:
    return sum(ch.isdigit() for ch in text)


def terminating_decimal(number: Fraction) -> str | None:
    """The exact decimal of a fraction whose denominator is 2^a·5^b (``7/2`` -> ``3.5``), else None."""
    den = number.denominator
    twos = fives = 0
    while den % 2 == 0:
        den, twos = den // 2, twos + 1
    while den % 5 == 0:
        den, fives = den // 5, fives + 1
    if den != 1:
        return None
    places = max(twos, fives)
    scaled = abs(number.numerator) * 10**places // number.denominator
    sign = "-" if number < 0 else ""
    if places == 0:
        return f"{sign}{scaled}"
    whole, frac = divmod(scaled, 10**places)
    return f"{sign}{whole}.{str(frac).rjust(places, '0').rstrip('0')}"


def approximate(number: Fraction, significant: int = ROUND_DIGITS) -> str:
    with localcontext() as ctx:
        ctx.prec = significant
        return str(Decimal(number.numerator) / Decimal(number.denominator))


def _size_digits(number: Fraction) -> float:
    """log10 of the larger of numerator and denominator: about its digits, without a str conversion."""
    return math.log10(max(abs(number.numerator), number.denominator))


def _shown(value: Value) -> str:
    """An operand as written in a message: parenthesised when negative or a fraction."""
    form = value.exact_form()
    if len(form) > 24:  # a 3,000-digit operand would bury the message
        form = f"{form[:8]}…{form[-4:]} ({digits(form):,} digits)"
    return f"({form})" if value.number < 0 or value.number.denominator != 1 else form


def _check_working(value: Value, what: str) -> Value:
    size = math.floor(_size_digits(value.number)) + 1
    if size > MAX_WORKING_DIGITS:
        raise MathInputError(f"result too large: {what} has about {size:,.0f} digits; the MathEngine computes with at most "
                             f"{MAX_WORKING_DIGITS:,} digits and answers at most {MAX_RESULT_DIGITS} digits")
    return value


def check_result(value: Value, expression: str) -> Value:
    """Refuse an answer whose exact form has more than MAX_RESULT_DIGITS digits."""
    _check_working(value, repr(expression))
    size = digits(value.exact_form())
    if value.exact and size > MAX_RESULT_DIGITS:
        raise MathInputError(f"result too large: {expression!r} has {size:,} digits; the MathEngine answers exactly "
                             f"up to {MAX_RESULT_DIGITS} digits")
    return value


# -- operations -----------------------------------------------------------------------------------
def _iroot(n: int, k: int) -> int:
    """floor(n ** (1/k)) for n >= 0, by integer Newton iteration (exact for any size)."""
    if n < 2:
        return n
    x = 1 << -(-n.bit_length() // k)  # 2^ceil(bits/k) >= the root
    while True:
        y = ((k - 1) * x + n // x ** (k - 1)) // k
        if y >= x:
            return x
        x = y


def _exact_root(number: Fraction, k: int) -> Fraction | None:
    """The k-th root of a non-negative fraction when it is rational, else None."""
    roots = []
    for part in (number.numerator, number.denominator):
        if part >= 2 and k >= part.bit_length():  # the root lies strictly between 1 and 2
            return None
        root = _iroot(part, k)
        if root**k != part:
            return None
        roots.append(root)
    return Fraction(roots[0], roots[1])


def power(base: Value, exponent: Value, shown: str = "") -> Value:
    """base ** exponent: exact for integer exponents and rational roots, else a rounded decimal."""
    shown = shown or f"{_shown(base)} ** {_shown(exponent)}"
    b, e = base.number, exponent.number
    exact = base.exact and exponent.exact
    if b == 0:
        if e < 0:
            raise MathInputError(f"division by zero: {shown} divides by 0")
        return Value(Fraction(int(e == 0)), exact)
    if abs(b.numerator) == 1 and b.denominator == 1 and e.denominator == 1:  # ±1 to any integer power
        return Value(Fraction(1 if b > 0 or e.numerator % 2 == 0 else -1), exact)
    estimate = math.floor(abs(float(e)) * _size_digits(b)) + 1 if abs(e) < 10**12 else float("inf")
    if estimate > MAX_WORKING_DIGITS:  # refused before it is computed: 10 ** 10000 never runs
        raise MathInputError(f"result too large: {shown} would have about {estimate:,.0f} digits; the MathEngine computes with "
                             f"at most {MAX_WORKING_DIGITS:,} digits and answers at most {MAX_RESULT_DIGITS} digits")
    if e.denominator == 1:
        return Value(b ** e.numerator, exact)
    odd_root = e.denominator % 2 == 1
    if b < 0 and not odd_root:
        raise MathInputError(f"{shown} is not a real number (an even root of a negative number)")
    sign = -1 if b < 0 and e.numerator % 2 == 1 else 1
    magnitude = abs(b)
    if exact and abs(e.numerator) * _size_digits(magnitude) <= MAX_WORKING_DIGITS:
        root = _exact_root(magnitude ** abs(e.numerator), e.denominator)
        if root is not None:
            return Value(sign * (root if e > 0 else 1 / root), True)
    with localcontext() as ctx:  # irrational: a correctly rounded decimal, marked inexact
        ctx.prec = ROUND_DIGITS + 10
        ln = (Decimal(magnitude.numerator).ln() - Decimal(magnitude.denominator).ln())
        approx = (ln * Decimal(e.numerator) / Decimal(e.denominator)).exp()
    return Value(sign * Fraction(approx), False)


def apply(op: str, left: Value, right: Value | None = None) -> Value:
    """One operation on exact values (the MathEngine's typed API and the expression evaluator)."""
    exact = left.exact and (right is None or right.exact)
    a = left.number
    b = right.number if right is not None else None
    if op in ("div", "floordiv", "mod") and b == 0:
        raise MathInputError(f"division by zero: {_shown(left)} {_SYMBOL[op]} 0")
    if op == "add":
        out = a + b
    elif op == "sub":
        out = a - b
    elif op == "mul":
        out = a * b
    elif op == "div":
        out = a / b
    elif op == "floordiv":
        out = Fraction(a // b)
    elif op == "mod":
        out = a % b
    elif op == "pow":
        return _check_working(power(left, right), f"{_shown(left)} ** {_shown(right)}")
    elif op == "sqrt":
        if a < 0:
            raise MathInputError(f"sqrt({left.exact_form()}) is not a real number (square root of a negative number)")
        return power(left, Value(Fraction(1, 2)), f"sqrt({left.exact_form()})")
    elif op == "abs":
        out = abs(a)
    elif op == "neg":
        out = -a
    else:
        raise MathInputError(f"unknown math operation {op!r}; known: {', '.join(OPERATIONS)}")
    shown = f"{op}({_shown(left)})" if right is None else f"{_shown(left)} {_SYMBOL[op]} {_shown(right)}"
    return _check_working(Value(out, exact), shown)


OPERATIONS = ("add", "sub", "mul", "div", "floordiv", "mod", "pow", "sqrt", "abs", "neg")
UNARY = frozenset({"sqrt", "abs", "neg"})
_SYMBOL = {"add": "+", "sub": "-", "mul": "*", "div": "/", "floordiv": "//", "mod": "%", "pow": "**"}
_BINOPS = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.FloorDiv: "floordiv", ast.Mod: "mod", ast.Pow: "pow"}
_FUNCTIONS = {"sqrt": "sqrt", "abs": "abs"}
ALLOWED = "numbers, + - * / // % **, parentheses, unary + and -, sqrt(x) and abs(x)"


def to_value(number) -> Value:
    """An int, Fraction, Decimal, numeric string or float as an exact Value (a float as written: 0.1 is 1/10)."""
    if isinstance(number, Value):
        return number
    if isinstance(number, bool):
        raise MathInputError(f"{number!r} is not a number")
    if isinstance(number, (int, Fraction, Decimal)):
        return _check_working(Value(Fraction(number)), repr(number))
    if isinstance(number, float):
        if not math.isfinite(number):
            raise MathInputError(f"{number!r} is not a finite number")
        return Value(Fraction(repr(number)))  # the shortest decimal that round-trips: what was written
    if isinstance(number, str):
        return literal(number)
    raise MathInputError(f"{number!r} is not a number")


_LITERAL = re.compile(r"^(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$")


def literal(text: str) -> Value:
    """A decimal literal (``0.1``, ``1_000``, ``2.5e-3``) as an exact fraction; exponent bounded first."""
    m = _LITERAL.match(text.replace("_", "").strip())
    if m is None or not (m.group(1) or m.group(2)):
        raise MathInputError(f"{text!r} is not a decimal number")
    whole, frac, exp = m.group(1) or "", m.group(2) or "", int(m.group(3) or 0)
    if len(whole) + len(frac) > MAX_WORKING_DIGITS or abs(exp) > MAX_WORKING_DIGITS:
        raise MathInputError(f"number too large: {text[:40]!r}{'…' if len(text) > 40 else ''} exceeds the MathEngine's "
                             f"{MAX_WORKING_DIGITS:,}-digit bound")
    return Value(Fraction(int(whole + frac or "0")) * Fraction(10) ** (exp - len(frac)))


# -- the expression parser ------------------------------------------------------------------------
def parse(expression: str) -> ast.expr:
    """Parse and check an arithmetic expression; anything outside ALLOWED is a MathInputError."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise MathInputError(f"expression is {len(expression):,} characters; at most {MAX_EXPRESSION_CHARS:,}")
    if not expression.strip():
        raise MathInputError("empty expression: nothing to compute")
    longest = max((len(run) for run in re.findall(r"\d[\d_]*", expression)), default=0)
    if longest > MAX_WORKING_DIGITS:  # before ast: Python refuses int literals over 4300 digits itself
        raise MathInputError(f"number too large: a number in the expression has {longest:,} digits; at most {MAX_WORKING_DIGITS:,}")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise MathInputError(f"not a well-formed arithmetic expression: {expression.strip()!r} ({exc.msg}); "
                             f"use {ALLOWED}") from None
    except (RecursionError, MemoryError) as exc:  # Python's parser nests its own recursion: ~1,000 chained operations
        raise MathInputError(f"expression too deeply nested or too long to parse ({type(exc).__name__}); "
                             "split it into smaller expressions") from None
    except ValueError as exc:
        raise MathInputError(f"expression cannot be parsed: {exc}") from None
    for node in ast.walk(tree.body):
        _check_node(node)
    return tree.body


def _check_node(node: ast.AST) -> None:
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        return
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        return
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS:
        if len(node.args) != 1 or node.keywords:
            raise MathInputError(f"{node.func.id}() takes exactly one number")
        return
    if isinstance(node, ast.Name) and node.id in _FUNCTIONS:  # the callee of an allowed call
        return
    if isinstance(node, (ast.operator, ast.unaryop, ast.Load)):
        return
    shown = ast.unparse(node) if isinstance(node, ast.expr) else type(node).__name__
    raise MathInputError(f"not arithmetic: {shown!r}; only {ALLOWED} are allowed")


def evaluate(expression: str) -> Evaluation:
    """Parse and compute ``expression`` exactly; the answer is bounded by MAX_RESULT_DIGITS."""
    text = expression.strip()
    node = parse(text)
    try:
        value = _eval(node, text)
    except RecursionError:
        raise MathInputError("expression nests too deeply to evaluate") from None
    except ZeroDivisionError:  # Fraction arithmetic this module did not foresee: still the user's
        raise MathInputError(f"division by zero in {text!r}") from None
    return Evaluation(text, check_result(value, text))


def _eval(node: ast.expr, source: str) -> Value:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, int):  # decimal, hex, octal or binary: Python's int is exact
            return _check_working(Value(Fraction(node.value)), "a number in the expression")
        return literal(ast.get_source_segment(source, node) or repr(node.value))  # 0.1 from its text, not the float
    if isinstance(node, ast.UnaryOp):
        operand = _eval(node.operand, source)
        return operand if isinstance(node.op, ast.UAdd) else apply("neg", operand)
    if isinstance(node, ast.BinOp):
        return apply(_BINOPS[type(node.op)], _eval(node.left, source), _eval(node.right, source))
    if isinstance(node, ast.Call):
        return apply(_FUNCTIONS[node.func.id], _eval(node.args[0], source))
    raise MathInputError(f"not arithmetic: {ast.unparse(node)!r}")  # parse() already refused it


# -- text forms the stub translator recognises ---------------------------------------------------
_PREFIX = re.compile(r"^\s*(?:what\s+is|what's|whats|how\s+much\s+is|compute|calculate|evaluate)\s+(?:the\s+)?")
_WORDS = [  # longest first: "to the power of" before "power"
    (r"\b(?:raised\s+)?to\s+the\s+power\s+of\b|\braised\s+to\b", "**"),
    (r"\bmultiplied\s+by\b|\btimes\b", "*"),
    (r"\bdivided\s+by\b|\bover\b", "/"),
    (r"\bmodulo\b|\bmod\b", "%"),
    (r"\bplus\b", "+"),
    (r"\bminus\b|\bneg\b|\bnegative\b", "-"),
    (r"\bsquared\b", "** 2"),
    (r"\bcubed\b", "** 3"),
    (r"\b(?:the\s+)?square\s+root\s+of\b|\bsqrt\s+of\b|√", "sqrt"),
    (r"\b(?:the\s+)?absolute\s+value\s+of\b|\babs\s+of\b", "abs"),
    (r"−", "-"), (r"×", "*"), (r"÷", "/"), (r"\^", "**"), (r"(?<=[\d)])\s+x\s+(?=[\d(.])", "*"),
]
_NUMBER = r"\d[\d_]*(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?"
_BARE_CALL = re.compile(rf"\b(sqrt|abs)\s*([-+]?\s*(?:{_NUMBER}))")
_TOKEN = re.compile(rf"\s*(?:({_NUMBER})|(\*\*|//|[-+*/%])|([()])|(sqrt|abs))")


def expression_in(text: str) -> str | None:
    """The arithmetic expression a query asks for ("what is 2 plus 3?" -> "2 + 3"), or None.

    A query is arithmetic when, after the word forms are rewritten, it is made only of
    numbers, operators, parentheses and sqrt/abs, with at least one operator or function;
    whether it is well formed is the MathEngine's to say (so "(2 + 3" gets a clear refusal
    instead of being read as words).
    """
    body = _PREFIX.sub("", text.lower())
    body = re.sub(r"[\s?=!]*$", "", body)
    body = re.sub(r"(?<=[)\s])\.$", "", body)  # "(2 + 3)." ends a sentence; "4." is a number
    for pattern, repl in _WORDS:
        body = re.sub(pattern, f" {repl} ", body)
    body = _BARE_CALL.sub(lambda m: f"{m.group(1)}({m.group(2).replace(' ', '')})", body)
    body = " ".join(body.split())
    position, operators = 0, 0
    while position < len(body):
        m = _TOKEN.match(body, position)
        if m is None or m.end() == position:
            return None
        operators += bool(m.group(2) or m.group(4))
        position = m.end()
    return body if operators and re.search(r"\d", body) else None
