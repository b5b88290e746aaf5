"""Text handling: binary detection, line-based chunks and line lookups inside a chunk.

Chunks are CHUNK_LINES lines long and start every CHUNK_STEP lines, so consecutive chunks overlap
by a few lines and a match spanning a boundary is still inside one chunk. Each chunk *owns* the
lines from its start up to the next chunk's start (the last chunk owns everything to its end):
a match is reported only by the chunk owning its first line, so overlaps never give duplicates.
Lines are split on `\\n` only, and numbered from 1, as git and editors do.
"""

from __future__ import annotations

from dataclasses import dataclass

# The chunk is the unit of ranking, not of results (hits carry exact lines): bm25 costs per
# matching chunk, and 120-line chunks search Django twice as fast as 60-line ones.
CHUNK_LINES = 120
CHUNK_STEP = 115
BINARY_SNIFF_BYTES = 8000  # what git itself looks at


@dataclass(frozen=True, slots=True)
class Chunk:
    start_line: int
    end_line: int
    owned_end: int
    text: str


def is_binary(data: bytes) -> bool:
    """Git's heuristic: a NUL byte near the start."""
    return b"\0" in data[:BINARY_SNIFF_BYTES]


def decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def count_lines(text: str) -> int:
    if not text:
        return 0
    return text.count("\n") + (0 if text.endswith("\n") else 1)


def split_chunks(text: str) -> list[Chunk]:
    """Cut `text` into overlapping line windows; empty text has no chunk."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    chunks: list[Chunk] = []
    for start in range(0, len(lines), CHUNK_STEP):
        end = min(start + CHUNK_LINES, len(lines))
        is_last = start + CHUNK_STEP >= len(lines)
        owned_end = end if is_last else start + CHUNK_STEP
        chunks.append(Chunk(start + 1, end, owned_end, "\n".join(lines[start:end])))
        if is_last:
            break
    return chunks


class LineMap:
    """Finds the line of character offsets in a chunk's text, counting newlines as it goes.

    Offsets asked in increasing order (as `re.finditer` yields them) cost only the newlines
    between them.
    """

    def __init__(self, text: str, first_line: int) -> None:
        self.text = text
        self._offset = 0
        self._line = first_line
        self._first_line = first_line

    def line_at(self, offset: int) -> int:
        if offset < self._offset:
            self._offset, self._line = 0, self._first_line
        self._line += self.text.count("\n", self._offset, offset)
        self._offset = offset
        return self._line

    def column_at(self, offset: int) -> int:
        """1-based column (in characters) of `offset` on its line."""
        return offset - self.text.rfind("\n", 0, offset)

    def line_text_at(self, offset: int) -> str:
        """The whole line that `offset` is on, without its newline."""
        start = self.text.rfind("\n", 0, offset) + 1
        end = self.text.find("\n", offset)
        return self.text[start : end if end != -1 else len(self.text)]
