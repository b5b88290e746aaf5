"""The repo map: a compact, ranked list of files and their main symbols, for the agent's prompt.

Ranking heuristic (a cheap stand-in for aider's PageRank over references):
1. Pinned first: README files at the root, then entry points near the root (`__main__.py`,
   `main.go`, `src/main.rs`, `manage.py`, `index.ts` …), because that is where a reader starts.
2. Then code files by how much the rest of the view uses what they define: for each top-level
   public symbol, the number of *other* files that mention its name (identifier sets stored per
   blob at index time), divided by the number of files defining that name, so a name like `get`
   defined in fifty files weighs little, and by 5 for a plain lowercase word shorter than 8
   letters (`lower`, `date`), which mostly counts unrelated uses. The sum is damped for test,
   example, migration and vendored paths (x0.1) and, mildly, for depth.
3. Files without symbols come last, shallow ones first, as plain paths.
Inside a file, its most used symbols are shown first (a few, with a few members each), so the
budget covers more files rather than every symbol of the first ones.
The map is cut to `token_budget` tokens, estimated as characters / 4.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from branchwork.index._store import Layers, Store, visible

CHARS_PER_TOKEN = 4
MAX_TOP_SYMBOLS = 6
MAX_MEMBERS = 5
_ENTRY_POINTS = frozenset({
    "__main__.py", "main.py", "manage.py", "app.py", "cli.py", "main.go", "main.rs", "lib.rs",
    "index.js", "index.ts", "main.js", "main.ts", "main.c", "main.cpp", "Main.java",
})  # fmt: skip
_DAMPED_PARTS = frozenset({
    "test", "tests", "testing", "spec", "specs", "__tests__", "fixtures", "examples", "example",
    "migrations", "vendor", "third_party", "node_modules", "locale", "docs", "benchmarks",
})  # fmt: skip
_GENERIC = re.compile(r"[a-z]{1,7}")
_CLASS_KINDS = frozenset({"class", "struct", "interface", "trait", "enum", "module"})


@dataclass
class _File:
    path: str
    top: list[tuple[str, str]] = field(default_factory=list)  # (kind, name)
    members: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    idents: frozenset[str] = frozenset()
    score: float = 0.0


def repo_map(store: Store, view: Layers, token_budget: int) -> str:
    files = _load(store, view)
    _score(files)
    ordered = sorted(files.values(), key=_rank_key)
    return _render(ordered, token_budget * CHARS_PER_TOKEN)


def _load(store: Store, view: Layers) -> dict[str, _File]:
    files = {
        path: _File(path)
        for (path,) in store.conn.execute(
            "SELECT p.path FROM view_files v JOIN paths p ON p.id = v.path_id "  # noqa: S608
            f"WHERE {visible('v')} AND v.blob_id != 0",
            view.params(),
        )
    }
    symbols = store.conn.execute(
        "SELECT p.path, s.kind, s.name, s.container FROM symbols s "  # noqa: S608
        f"JOIN view_files v ON v.blob_id = s.blob_id AND {visible('v')} "
        "JOIN paths p ON p.id = v.path_id AND p.language = s.language "
        "ORDER BY p.path, s.start_line",
        view.params(),
    )
    for path, kind, name, container in symbols:
        if name.startswith("_"):
            continue  # private by convention: not what a map of the code should spend room on
        if container is None:
            files[path].top.append((kind, name))
        else:
            files[path].members[container].append(name)
    idents = store.conn.execute(
        "SELECT p.path, x.idents FROM parsed x "  # noqa: S608
        f"JOIN view_files v ON v.blob_id = x.blob_id AND {visible('v')} "
        "JOIN paths p ON p.id = v.path_id AND p.language = x.language",
        view.params(),
    )
    for path, words in idents:
        files[path].idents = frozenset(words.split())
    return files


def _score(files: dict[str, _File]) -> None:
    mentions: Counter[str] = Counter()
    definers: Counter[str] = Counter()
    for file in files.values():
        mentions.update(file.idents)
        definers.update({name for _, name in file.top})
    for file in files.values():
        weights: dict[str, float] = {}
        for _, name in file.top:
            others = mentions[name] - (1 if name in file.idents else 0)
            generic = 0.2 if _GENERIC.fullmatch(name) else 1.0
            weights[name] = generic * others / max(1, definers[name])
        total = sum(weights.values())
        # Most used symbols first (stable: source order among equals).
        file.top.sort(key=lambda symbol: -weights[symbol[1]])
        parts = file.path.split("/")
        damping = 0.1 if _DAMPED_PARTS.intersection(parts[:-1]) else 1.0
        file.score = total * damping / (1 + 0.1 * (len(parts) - 1))


def _pin(path: str) -> int:
    parts = path.split("/")
    if len(parts) == 1 and parts[0].upper().startswith("README"):
        return 0
    if len(parts) <= 2 and parts[-1] in _ENTRY_POINTS:
        return 1
    return 2


def _rank_key(file: _File) -> tuple[int, int, float, int, str]:
    has_symbols = 0 if file.top else 1
    return (_pin(file.path), has_symbols, -file.score, file.path.count("/"), file.path)


def _render(files: list[_File], budget_chars: int) -> str:
    out: list[str] = []
    used = 0
    for file in files:
        block = _block(file)
        if used + len(block) > budget_chars:
            block = file.path + "\n"
            if used + len(block) > budget_chars:
                continue
        out.append(block)
        used += len(block)
    return "".join(out).rstrip("\n")


def _block(file: _File) -> str:
    lines = [file.path]
    for kind, name in file.top[:MAX_TOP_SYMBOLS]:
        members = file.members.get(name, []) if kind in _CLASS_KINDS else []
        line = f"  {kind} {name}"
        if members:
            shown = ", ".join(dict.fromkeys(members[:MAX_MEMBERS]))
            line += f": {shown}" + (", …" if len(members) > MAX_MEMBERS else "")
        lines.append(line)
    if len(file.top) > MAX_TOP_SYMBOLS:
        lines.append(f"  … {len(file.top) - MAX_TOP_SYMBOLS} more")
    return "\n".join(lines) + "\n"
