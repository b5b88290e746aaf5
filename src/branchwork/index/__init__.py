"""The repository context index: git blobs → FTS5 full text, tree-sitter symbols, repo map.

```python
index = CodeIndex(data_dir / "index.sqlite")
report = index.index_view(repo, "HEAD")                    # a commit's tree …
report = index.index_view(worktree, snapshot_tree(worktree))  # … or a session's working state
hits = index.search(report.tree, "QuerySet", path_glob="django/db/*", limit=20)
```

Module map: `_git` (ls-tree, cat-file, snapshots) → `_process` (`_chunks`, `_symbols`) →
`_store` (SQLite) ← `_indexer`; queries in `_search` (+ `_regex`), `_definitions`, `_repomap`,
`_documents`; `_index` is the facade. Imports only `branchwork.domain` and `branchwork.gitops`.
"""

from branchwork.gitops import snapshot_tree
from branchwork.index._git import resolve_tree
from branchwork.index._index import DEFAULT_MAX_FILE_BYTES, CodeIndex
from branchwork.index._models import (
    SKIP_REASONS,
    Document,
    IndexReport,
    Reference,
    ReferenceResults,
    SearchHit,
    SearchResults,
    Symbol,
)
from branchwork.index._outline import definitions_in
from branchwork.index._store import OVERLAY_PREFIX, OverlayInfo, OverlayRows

__all__ = [
    "DEFAULT_MAX_FILE_BYTES",
    "OVERLAY_PREFIX",
    "SKIP_REASONS",
    "CodeIndex",
    "Document",
    "IndexReport",
    "OverlayInfo",
    "OverlayRows",
    "Reference",
    "ReferenceResults",
    "SearchHit",
    "SearchResults",
    "Symbol",
    "definitions_in",
    "resolve_tree",
    "snapshot_tree",
]
