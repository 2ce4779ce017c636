"""Fuzzing the compiler: every text gives a `CompiledModel` or a located `EqError`.

Two Hypothesis strategies make the texts: `random_models`, a generator that
follows the grammar (so that most texts get past the parser and reach the
checker, the analyses and the code generator), and `mutated_models`, the zoo
files and every model in the documentation damaged line by line and
character by character.  `benchmarks/fuzz.py` runs the same strategies for
tens of thousands of cases.
"""

from __future__ import annotations

import re
import string
import time
import warnings
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eqneuron as eqn
from eqneuron.check import BUILTINS, FUNCTIONS, RANDOM_FUNCTIONS
from eqneuron.lang import BLOCK_KEYWORDS

ROOT = Path(__file__).resolve().parent.parent
SECONDS_PER_COMPILE = 10.0


def corpus() -> list[str]:
    """The zoo, every model in docs/*.md and the models written inside examples/*.py."""
    texts = [path.read_text() for path in sorted((ROOT / "models").glob("*.eq"))]
    for path in sorted((ROOT / "docs").glob("*.md")):
        texts += re.findall(r"```eq\n(.*?)```", path.read_text(), re.S)
    for path in sorted((ROOT / "examples").glob("*.py")):
        # a model has a `threshold:` block at the start of a line (docstrings may mention the word)
        texts += [t for t in re.findall(r'"""(.*?)"""', path.read_text(), re.S) if re.search(r"^threshold:", t, re.M)]
    return texts


# ---- the property ---------------------------------------------------------------


def is_source_text(text: str) -> bool:
    """Whether `compile_model` reads `text` as model source (else as a file or zoo name)."""
    return "\n" in text or not text.strip() or any(c in text for c in ":=#")


def check_compiles_or_points_at_a_line(text: str) -> str:
    """Compile `text`; return "compiled" or "EqError", or fail naming what went wrong.

    An `EqError` must name a line and column inside the text (the column may
    be one past the end of the line) and quote that very line.
    """
    start = time.process_time()  # CPU time: other processes on the machine do not count
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = eqn.compile_model(text)
    except eqn.EqError as error:
        assert_located(error, text)
        outcome = "EqError"
    else:
        assert isinstance(model, eqn.CompiledModel)
        outcome = "compiled"
    elapsed = time.process_time() - start
    assert elapsed < SECONDS_PER_COMPILE, f"compiling took {elapsed:.1f} s of CPU time"
    return outcome


def assert_located(error: eqn.EqError, text: str) -> None:
    message = str(error)
    if error.line is None:
        assert not is_source_text(text), f"an error without a line for model text:\n{message}"
        return
    # lines as the lexer counts them: only `\n` ends one (form feeds, U+2029... do not)
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    assert 1 <= error.line <= len(lines), f"line {error.line} of {len(lines)}:\n{message}"
    line = lines[error.line - 1]
    assert 1 <= error.column <= len(line) + 1, f"column {error.column} of {len(line)}:\n{message}"
    assert f"\n    {quoted(line)}\n" in message, f"line {error.line} is not quoted:\n{message}"


def quoted(line: str) -> str:
    """A line as a message shows it: invisible separators as spaces, other controls as U+FFFD."""
    return "".join(c if c.isprintable() or c == "\t" else " " if c.isspace() else "\ufffd" for c in line)


# ---- strategy 1: models that follow the grammar ------------------------------------

NUMBERS = ["1", "2", "0.5", "10.0", "1e-3", "3.", ".5", "0", "9", "1e308", "1e999", "123456789012345678901"]
ODD_NAMES = [*BUILTINS, *FUNCTIONS, *RANDOM_FUNCTIONS, "neuron", "dt", "v_pre", "_", "exp2", "tua"]
COMPARISONS = [">", ">=", "<", "<=", "==", "!="]


def chance(draw, percent: int) -> bool:
    """True `percent` % of the time (the window avoids the ends, which Hypothesis favours)."""
    return 20 <= draw(st.integers(0, 99)) < 20 + percent


@st.composite
def expressions(draw, names: list[str], depth: int = 0, condition: bool = False, time: bool = True) -> str:
    """An expression in the language's Python subset, mostly over `names` (and `t` if `time`)."""
    if condition:
        kind = draw(st.sampled_from(["compare"] * 5 + ["and", "or", "not"]))
        if kind == "compare":
            left = draw(expressions(names, depth + 1, time=time))
            right = draw(expressions(names, depth + 1, time=time))
            return f"{left} {draw(st.sampled_from(COMPARISONS))} {right}"
        if kind == "not":
            return f"not {draw(expressions(names, depth + 1, condition=True, time=time))}"
        parts = draw(
            st.lists(expressions(names, depth + 1, condition=True, time=time), min_size=2, max_size=3)
        )
        return f" {kind} ".join(f"({p})" for p in parts)
    if depth > 3 or chance(draw, 35 + 10 * depth):
        if chance(draw, 5):
            return draw(
                st.one_of(
                    st.sampled_from([*ODD_NAMES, "inf", "-inf"]),
                    st.sampled_from(NUMBERS[-4:]),
                    st.floats(allow_nan=False, allow_infinity=False).map(repr),
                    st.integers(0, 10**30).map(str),
                )
            )
        pool = (names or ["1"]) * 4 + NUMBERS[:7] + ["pi", "e"] + ["t"] * time
        return draw(st.sampled_from(pool))
    kind = draw(
        st.sampled_from(["binary"] * 6 + ["unary", "call", "call", "call", "parens", "where", "power"])
    )
    sub = expressions(names, depth + 1, time=time)
    if kind == "binary":
        return f"{draw(sub)} {draw(st.sampled_from(['+', '-', '*', '/']))} {draw(sub)}"
    if kind == "power":
        return f"{draw(sub)}**{draw(st.sampled_from(['2', '3', '0.5', '-1']) if chance(draw, 80) else sub)}"
    if kind == "unary":
        return f"-{draw(sub)}"
    if kind == "parens":
        return f"({draw(sub)})"
    if kind == "where":
        return f"where({draw(expressions(names, depth + 1, condition=True, time=time))}, {draw(sub)}, {draw(sub)})"
    function = draw(st.sampled_from(sorted(FUNCTIONS)))
    arities, _ = FUNCTIONS[function]
    arity = draw(st.sampled_from(arities or (2, 3)))
    if chance(draw, 5):
        function = draw(st.sampled_from(["normal", "uniform", "expp", "v", function]))
        arity = draw(st.integers(0, 4))
    if function == "where":
        return f"where({draw(expressions(names, depth + 1, condition=True, time=time))}, {draw(sub)}, {draw(sub)})"
    return f"{function}({', '.join(draw(sub) for _ in range(arity))})"


@st.composite
def random_models(draw) -> str:
    """A model text that follows the grammar, with blocks in random order and mistakes now and then."""
    params = draw(st.lists(st.sampled_from(["tau", "a", "b", "c", "v_th", "g"]), max_size=4, unique=True))
    states = draw(st.lists(st.sampled_from(["v", "u", "x", "y"]), min_size=1, max_size=3, unique=True))
    subs = draw(st.lists(st.sampled_from(["s", "i_syn", "drive"]), max_size=2, unique=True))
    weights = draw(st.lists(st.sampled_from(["w", "w2"]), max_size=2, unique=True))
    names = params + states + subs
    indent = draw(st.sampled_from(["    ", "  ", "\t", "        "]))

    def block(header: str, lines: list[str]) -> str:
        if len(lines) == 1 and draw(st.booleans()):
            return f"{header}: {lines[0]}\n"
        return f"{header}:\n" + "".join(f"{indent}{line}\n" for line in lines)

    blocks = []
    if params:
        lines = []
        for k, name in enumerate(params):
            flags = draw(
                st.sampled_from(["", "", "", " (per_neuron)", " (trainable)", " (per_neuron, trainable)"])
            )
            lines.append(f"{name} = {draw(expressions(params[:k], time=False))}{flags}")
        blocks.append(block("parameters", lines))
    if draw(st.booleans()):
        blocks.append(block("state", [f"{s} = {draw(expressions(params, time=False))}" for s in states]))
    equations = [f"d{s}/dt = {draw(expressions(names))}" for s in states if not chance(draw, 10)]
    # subexpressions may use earlier ones only, or they would often be circular
    equations += [f"{s} = {draw(expressions(params + states + subs[:k]))}" for k, s in enumerate(subs)]
    if not chance(draw, 3):
        blocks.append(block("equations", equations or ["dv/dt = 1"]))
    if not chance(draw, 3):
        left = draw(st.sampled_from(states)) if chance(draw, 70) else draw(expressions(names))
        rhs = draw(expressions(params or ["1"], time=False))
        comparison = (
            draw(st.sampled_from(COMPARISONS[:4])) if chance(draw, 95) else draw(st.sampled_from(COMPARISONS))
        )
        blocks.append(block("threshold", [f"{left} {comparison} {rhs}"]))
    if draw(st.booleans()):
        ops = ["=", "=", "+=", "-=", "*="]
        targets = draw(st.lists(st.sampled_from(states), min_size=1, max_size=2, unique=True))
        if chance(draw, 5):
            targets.append(draw(st.sampled_from([*params, "nope", states[0]])))
            ops.append("/=")
        blocks.append(
            block("reset", [f"{x} {draw(st.sampled_from(ops))} {draw(expressions(names))}" for x in targets])
        )
    if weights:
        initialisers = [
            "normal(0, 1)",
            "uniform(-1, 1) / sqrt(fan_in)",
            "normal(1.0, 0.5) * 2 / sqrt(fan_in)",
        ]
        lines = [
            w if draw(st.booleans()) else f"{w} = {draw(st.sampled_from(initialisers))}" for w in weights
        ]
        if chance(draw, 10):
            lines[0] = f"{weights[0]} = {draw(expressions(params + ['fan_in'], time=False))}"
        blocks.append(block("weights", lines))
        for header in ("on_spike", "on_input"):
            if draw(st.booleans()):
                pool = names + weights + ([f"{s}_pre" for s in states] if header == "on_spike" else ["value"])
                target = draw(st.sampled_from(states))
                op = draw(st.sampled_from(["+=", "-="])) if chance(draw, 95) else "="
                blocks.append(block(header, [f"{target} {op} {draw(expressions(pool))}"]))
    if chance(draw, 4):
        blocks.append(
            draw(
                st.sampled_from(["refractory: 2.0\n", "delay: 1.0\n", f"event burst: v > 1\n{indent}v = 0\n"])
            )
        )
    blocks = draw(st.permutations(blocks))
    header = draw(st.sampled_from(["", "# a fuzzed model\n", "neuron Fuzz\n", "# fuzz\nneuron Fuzz\n\n"]))
    return header + "".join(blocks)


# ---- strategy 2: damaged copies of real models ------------------------------------------

ODD_CHARACTERS = [
    "\u2029",
    "\u2028",
    "\x0c",
    "\x0b",
    "\r",
    "\r\n",
    "\x00",
    "\x85",
    "\ufeff",
    "\t",
    "\\",
    "é",
    "\u00a0",
    "\u0301",
    "𝑥",
    "😀",
    "\u202e",
    "ｖ",
    "$",
    "'",
    '"',
    "`",
    "!",
    "@",
    "?",
    "[",
    "]",
    "{",
    ";",
    ",",
]
TOKENS = [
    *BLOCK_KEYWORDS,
    *FUNCTIONS,
    *BUILTINS,
    "+",
    "-",
    "*",
    "/",
    "**",
    "=",
    "+=",
    "-=",
    "*=",
    "/=",
    ">",
    "<",
    ">=",
    "==",
    "(",
    ")",
    ",",
    ":",
    "#",
    "and",
    "or",
    "not",
    "0",
    "1",
    "-1",
    "1e999",
    "9**9**9",
    "0.0",
    "dv/dt",
    "v",
    "v_pre",
    "(per_neuron)",
    "(trainable)",
    "(unless refractory)",
    "(constant)",
    ": ms",
    "\\",
    "    ",
    "\t",
    "",
]
_TOKEN = re.compile(r"\d+\.?\d*(?:[eE][+-]?\d+)?|\w+|\*\*|[+\-*/]=|[<>=!]=|\S")


@st.composite
def mutated_models(draw) -> str:
    """A zoo or documentation model after one to four random edits."""
    text = draw(st.sampled_from(CORPUS))
    for _ in range(draw(st.integers(1, 4))):
        text = draw(st.sampled_from(MUTATIONS))(draw, text)
    return text


def _line_index(draw, lines: list[str]) -> int:
    return draw(st.integers(0, max(0, len(lines) - 1)))


def delete_line(draw, text):
    lines = text.split("\n")
    del lines[_line_index(draw, lines)]
    return "\n".join(lines)


def duplicate_line(draw, text):
    lines = text.split("\n")
    k = _line_index(draw, lines)
    lines.insert(draw(st.integers(0, len(lines))), lines[k])
    return "\n".join(lines)


def swap_lines(draw, text):
    lines = text.split("\n")
    a, b = _line_index(draw, lines), _line_index(draw, lines)
    lines[a], lines[b] = lines[b], lines[a]
    return "\n".join(lines)


def reindent_line(draw, text):
    lines = text.split("\n")
    k = _line_index(draw, lines)
    indent = draw(st.sampled_from(["", " ", "  ", "   ", "\t", "    \t", "        ", "\x0c"]))
    lines[k] = indent + lines[k].lstrip(" \t")
    return "\n".join(lines)


def replace_token(draw, text):
    tokens = list(_TOKEN.finditer(text))
    if not tokens:
        return text
    token = draw(st.sampled_from(tokens))
    replacement = draw(
        st.one_of(
            st.sampled_from(TOKENS),
            st.sampled_from([m.group() for m in tokens]),
            st.floats(allow_nan=False).map(repr),
            st.integers(-(10**40), 10**40).map(str),
            st.text(string.ascii_letters + "_", min_size=1, max_size=6),
        )
    )
    return text[: token.start()] + replacement + text[token.end() :]


def insert_token(draw, text):
    position = draw(st.integers(0, len(text)))
    return text[:position] + draw(st.sampled_from(TOKENS)) + text[position:]


def insert_character(draw, text):
    position = draw(st.integers(0, len(text)))
    character = draw(st.one_of(st.sampled_from(ODD_CHARACTERS), st.characters(codec="utf-8")))
    return text[:position] + character + text[position:]


def delete_character(draw, text):
    if not text:
        return text
    position = draw(st.integers(0, len(text) - 1))
    return text[:position] + text[position + 1 :]


def truncate(draw, text):
    return text[: draw(st.integers(0, len(text)))]


def nest(draw, text):
    """Wrap the right-hand side of one `=` in many parentheses or a long chain."""
    lines = text.split("\n")
    candidates = [k for k, line in enumerate(lines) if "=" in line and not line.lstrip().startswith("#")]
    if not candidates:
        return text
    k = draw(st.sampled_from(candidates))
    left, _, right = lines[k].partition("=")
    n = draw(st.integers(1, 120))
    wrapped = draw(
        st.sampled_from(
            [
                "(" * n + right + ")" * n,
                "exp(" * n + right + ")" * n,
                "-" * n + right,
                right + " + 1" * n * 10,
            ]
        )
    )
    lines[k] = f"{left}= {wrapped}"
    return "\n".join(lines)


MUTATIONS = [
    delete_line,
    duplicate_line,
    swap_lines,
    reindent_line,
    replace_token,
    replace_token,
    insert_token,
    insert_character,
    delete_character,
    truncate,
    nest,
]
CORPUS = corpus()


def any_models():
    return st.one_of(random_models(), mutated_models())


# ---- the tests ----------------------------------------------------------------------------

FUZZ = settings(
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def test_corpus_has_the_zoo_and_the_docs():
    assert len(CORPUS) >= 10
    for text in CORPUS:
        assert check_compiles_or_points_at_a_line(text) == "compiled"


@settings(FUZZ, max_examples=100)
@given(random_models())
def test_random_models_compile_or_give_a_located_error(text):
    check_compiles_or_points_at_a_line(text)


@settings(FUZZ, max_examples=150)
@given(mutated_models())
def test_mutated_models_compile_or_give_a_located_error(text):
    check_compiles_or_points_at_a_line(text)
