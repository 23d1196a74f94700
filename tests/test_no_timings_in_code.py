"""Measured figures live in BENCHMARKS.md, not in sidecar/'s comments and docstrings (DESIGN.md:
"Numbers go in benchmarks ... never in timed unit tests or docstrings"): they go stale as the code
and the machine change, while the reason a choice was made does not."""

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

SIDECAR = Path(__file__).resolve().parent.parent / "sidecar"

# A duration or a memory size (KiB/MiB are left alone: they name buffer sizes and option values),
# or a speed-up factor.
FIGURE = re.compile(
    r"\d(?:[\d.,]*\d)?\s*(?:ns|us|µs|μs|ms|kB|KB|MB|GB)\b"
    r"|\d(?:\.\d+)?(?:\s*-\s*\d+(?:\.\d+)?)?\s*x\s+(?:faster|slower|quicker|cheaper|smaller|larger)\b",
)


def prose(source: str) -> list[tuple[int, str]]:
    """(line, text) of every comment and every docstring or other bare string statement."""
    found = [
        (token.start[0], token.string)
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT
    ]
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            found.append((node.lineno, node.value.value))
    return found


def figures(source: str) -> list[str]:
    """Each figure found, as `line: 'figure'` (the line within a docstring counted from its start)."""
    hits = []
    for line, text in prose(source):
        for match in FIGURE.finditer(text):
            at = line + text.count("\n", 0, match.start())
            hits.append(f"{at}: {match.group(0)!r}")
    return hits


def test_no_measured_figures_in_sidecar_comments_or_docstrings():
    found = [
        f"{path.relative_to(SIDECAR.parent)}:{hit}"
        for path in sorted(SIDECAR.rglob("*.py"))
        for hit in figures(path.read_text(encoding="utf-8"))
    ]
    assert not found, (
        "move these figures to BENCHMARKS.md (bench/notes.md) and say why instead:\n" + "\n".join(found)
    )


@pytest.mark.parametrize(
    "text",
    [
        "takes about 4 µs (timeit)",
        "costs 0.4 us in a timeit loop",
        "about +25 ns per request",
        "add ~40 ms to every batch",
        "10,000 flags: 7 MB of RSS",
        "a 4 KB response",
        "(4-6x faster)",
        "3x faster than flagd-core",
        "1.5-2 us a call",
    ],
)
def test_a_figure_is_caught_in_a_comment_and_in_a_docstring(text):
    assert figures(f"x = 1  # {text}\n")
    assert figures(f'def f() -> None:\n    """{text}"""\n')


@pytest.mark.parametrize(
    "text",
    [
        "read 64 KiB at a time",
        "for example 65536, 64KiB or 4MiB",
        "a keep_alive after 20 s without other traffic",
        "a body over 2000 bytes apart from the headers",
        "MurmurHash3 x86 32-bit",
        "5 rules x 3 constraints",
        "Python 3.11",
    ],
)
def test_sizes_durations_of_protocols_and_names_are_not_figures(text):
    assert not figures(f"x = 1  # {text}\n")


def test_string_values_are_not_prose():
    # A message or a help text may give an example value; only comments and docstrings are checked.
    assert not figures('HELP = "timeout, e.g. 250 ms"\n')
