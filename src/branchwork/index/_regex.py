"""Literal substrings a regular expression requires, to prefilter candidates with FTS5.

A small conservative scanner (not `re`'s private parser): it keeps runs of plain characters that
every match must contain. Anything it does not understand (classes, groups, escapes like `\\d`,
optional atoms) ends a run. Top-level alternatives (`a|b`) become an OR; if one alternative
requires no literal of 3+ characters, there is no prefilter and the caller scans.
The result only ever narrows the candidates to a superset of the true matches: Python's `re`
verifies every candidate.
"""

from __future__ import annotations

import re

MIN_LITERAL = 3  # the trigram tokenizer cannot look up anything shorter
_QUANTIFIER = re.compile(r"\*|\+|\?|\{(\d*)(?:,(\d*))?\}")
_SKIP_ESCAPE = {"x": 2, "u": 4, "U": 8}


def fts_phrase(literal: str) -> str:
    """`literal` as an FTS5 phrase: quoted, inner quotes doubled."""
    return '"' + literal.replace('"', '""') + '"'


def regex_prefilter(pattern: str) -> str | None:
    """An FTS5 MATCH expression every match of `pattern` satisfies, or None to scan."""
    branches = required_literals(pattern)
    if branches is None:
        return None
    clauses: list[str] = []
    for branch in branches:
        literals = [lit for lit in branch if len(lit) >= MIN_LITERAL]
        if not literals:
            return None
        clauses.append(" AND ".join(fts_phrase(lit) for lit in literals))
    if len(clauses) == 1:
        return clauses[0]
    return " OR ".join(f"({clause})" for clause in clauses)


def required_literals(pattern: str) -> list[list[str]] | None:
    """For each top-level alternative, substrings every match of it contains; None if unknown.

    A text matching `pattern` contains all the literals of at least one alternative.
    """
    if re.search(r"\(\?[a-zA-Z]*x", pattern):
        return None  # verbose patterns: whitespace is not literal
    return [_literal_runs(branch) for branch in _top_level_branches(pattern)]


def _top_level_branches(pattern: str) -> list[str]:
    branches: list[str] = []
    start = i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if char == "[":
            i = _class_end(pattern, i)
            continue
        if char == "(":
            i = _group_end(pattern, i)
            continue
        if char == "|":
            branches.append(pattern[start:i])
            start = i + 1
        i += 1
    branches.append(pattern[start:])
    return branches


def _literal_runs(branch: str) -> list[str]:
    runs: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(branch):
        literal, i = _atom(branch, i)
        required, repeated, i = _quantifier(branch, i)
        if literal is not None and required:
            current.append(literal)
        if literal is None or not required or repeated:
            runs.append("".join(current))
            current = []
    runs.append("".join(current))
    return [run for run in runs if run]


def _atom(text: str, i: int) -> tuple[str | None, int]:
    """The literal character at `i` (or None for anything else) and the index after the atom."""
    char = text[i]
    if char == "\\":
        return _escape(text, i)
    if char == "[":
        return None, _class_end(text, i)
    if char == "(":
        return None, _group_end(text, i)
    if char in ".^$" or _QUANTIFIER.match(text, i):
        return None, i + 1
    return char, i + 1


def _escape(text: str, i: int) -> tuple[str | None, int]:
    if i + 1 >= len(text):
        return None, i + 1
    char = text[i + 1]
    if not char.isalnum():
        return char, i + 2
    if char in _SKIP_ESCAPE:
        return None, i + 2 + _SKIP_ESCAPE[char]
    if char == "N":
        end = text.find("}", i)
        return None, len(text) if end == -1 else end + 1
    end = i + 2
    while char.isdigit() and end < len(text) and text[end].isdigit():
        end += 1  # back-references and octal escapes
    return None, end


def _quantifier(text: str, i: int) -> tuple[bool, bool, int]:
    """(atom is required, atom may repeat, index after the quantifier)."""
    match = _QUANTIFIER.match(text, i)
    if match is None:
        return True, False, i
    end = match.end()
    if end < len(text) and text[end] in "?+":
        end += 1  # lazy or possessive
    symbol = match.group(0)
    if symbol in ("*", "?"):
        return False, True, end
    if symbol == "+":
        return True, True, end
    minimum = int(match.group(1) or 0)
    return minimum >= 1, True, end


def _class_end(text: str, i: int) -> int:
    """Index after the character class starting at `i`."""
    j = i + 1
    if j < len(text) and text[j] == "^":
        j += 1
    if j < len(text) and text[j] == "]":
        j += 1
    while j < len(text) and text[j] != "]":
        j += 2 if text[j] == "\\" else 1
    return j + 1


def _group_end(text: str, i: int) -> int:
    """Index after the group starting at `i` (nested groups, classes and escapes skipped)."""
    depth = 0
    j = i
    while j < len(text):
        char = text[j]
        if char == "\\":
            j += 2
            continue
        if char == "[":
            j = _class_end(text, j)
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return j + 1
        j += 1
    return j


# --- trigram sets: a prefilter for regexes without a literal ------------------------------------
#
# `\bx\d{3}\b` has no literal of 3 characters, but every match contains one of the trigrams
# `x00` … `x99`. Small character classes (`\d`, `[a-f]`, `[._-]`) are expanded into the trigrams
# they allow (the trigram index folds case, so letters count once), as in Russ Cox's "Regular
# Expression Matching with a Trigram Index"; a window of three positions that allows more than
# MAX_TRIGRAMS_PER_WINDOW trigrams is dropped. Zero-width assertions (`\b`, `^`, `$`) consume
# nothing and so do not break a run of positions.

MAX_CLASS = 40
MAX_TRIGRAMS_PER_WINDOW = 128
MAX_TRIGRAMS = 512
_DIGITS = frozenset("0123456789")
_ZERO_WIDTH = {"b", "B", "A", "Z"}
Position = frozenset[str]


def trigram_prefilter(pattern: str) -> str | None:
    """An FTS5 MATCH expression (ORs of trigrams, ANDed) every match of `pattern` satisfies,
    from its runs of small character sets; None when some alternative gives none."""
    if re.search(r"\(\?[a-zA-Z]*x", pattern):
        return None
    clauses: list[str] = []
    budget = MAX_TRIGRAMS
    for branch in _top_level_branches(pattern):
        windows = [w for run in _position_runs(branch) for w in _windows(run)]
        if not windows or sum(len(w) for w in windows) > budget:
            return None
        budget -= sum(len(w) for w in windows)
        clauses.append(" AND ".join(_any_of(w) for w in windows))
    if len(clauses) == 1:
        return clauses[0]
    return " OR ".join(f"({clause})" for clause in clauses)


def _any_of(trigrams: list[str]) -> str:
    return "(" + " OR ".join(fts_phrase(t) for t in trigrams) + ")"


def _windows(run: list[Position]) -> list[list[str]]:
    """For each three consecutive positions small enough, the trigrams they allow."""
    found = []
    for start in range(len(run) - 2):
        first, second, third = run[start : start + 3]
        if len(first) * len(second) * len(third) <= MAX_TRIGRAMS_PER_WINDOW:
            found.append(sorted(a + b + c for a in first for b in second for c in third))
    return found


def _position_runs(branch: str) -> list[list[Position]]:
    """Runs of consecutive required positions, each the set of characters it may hold."""
    runs: list[list[Position]] = []
    current: list[Position] = []
    i = 0
    while i < len(branch):
        if _is_zero_width(branch, i):
            i += 2 if branch[i] == "\\" else 1
            continue
        position, i = _position(branch, i)
        times, exact, i = _repeats(branch, i)
        if position is not None:
            current.extend([position] * times)
        if position is None or not exact:
            runs.append(current)
            current = []
    runs.append(current)
    return [run for run in runs if len(run) >= MIN_LITERAL]


def _is_zero_width(text: str, i: int) -> bool:
    if text[i] in "^$":
        return not _QUANTIFIER.match(text, i + 1)
    return (
        text[i] == "\\"
        and i + 1 < len(text)
        and text[i + 1] in _ZERO_WIDTH
        and not _QUANTIFIER.match(text, i + 2)
    )


def _position(text: str, i: int) -> tuple[Position | None, int]:
    """The characters the atom at `i` may match (case folded), or None, and the next index."""
    if text[i] == "[":
        end = _class_end(text, i)
        return _class_set(text[i + 1 : end - 1]), end
    if text.startswith("\\d", i):
        return _DIGITS, i + 2
    literal, end = _atom(text, i)
    return (None if literal is None else _folded(literal)), end


def _repeats(text: str, i: int) -> tuple[int, bool, int]:
    """(times the atom is required, whether exactly that many, index after the quantifier)."""
    match = _QUANTIFIER.match(text, i)
    if match is None:
        return 1, True, i
    end = match.end()
    if end < len(text) and text[end] in "?+":
        end += 1
    symbol = match.group(0)
    if symbol in ("*", "?"):
        return 0, False, end
    if symbol == "+":
        return 1, False, end
    low = int(match.group(1) or 0)
    exact = "," not in symbol and low <= 8
    return min(low, 8), exact, end


def _class_set(body: str) -> Position | None:
    """The characters of a simple, non-negated class body (`a-f0-9_`, `\\d`), else None."""
    if not body or body.startswith("^"):
        return None
    chars: set[str] = set()
    i = 0
    while i < len(body):
        if body.startswith("\\d", i):
            chars |= _DIGITS
            i += 2
            continue
        if body[i] == "\\":
            if i + 1 >= len(body) or body[i + 1].isalnum():
                return None  # \w, \s, \xhh …: too wide, or not worth decoding
            chars.add(body[i + 1])
            i += 2
            continue
        if i + 2 < len(body) and body[i + 1] == "-" and body[i + 2] != "\\":
            low, high = ord(body[i]), ord(body[i + 2])
            if high - low > MAX_CLASS:
                return None
            chars.update(chr(c) for c in range(low, high + 1))
            i += 3
            continue
        chars.add(body[i])
        i += 1
    folded = frozenset(c for ch in chars for c in _folded(ch))
    return folded if 0 < len(folded) <= MAX_CLASS else None


def _folded(char: str) -> Position:
    """The trigram index folds ASCII case: a letter stands for both of its cases."""
    return frozenset({char.lower()}) if char.isascii() else frozenset({char})
