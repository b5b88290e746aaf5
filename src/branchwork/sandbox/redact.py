"""Secret redaction for everything a command prints.

A project's secrets are passed to its commands in their environment; what the commands print is
recorded, so every configured secret value is replaced by `[secret:NAME]` before the text goes
anywhere (event log, blobs, the output file, a live stream).

Decisions:
- Values shorter than `MIN_SAFE_LENGTH` (4) characters are not redacted: they would replace
  every occurrence of those characters in every message and output, and such a value is no
  secret anyway. The configuration refuses to store a secret that short; an older one stays
  passed to commands but is not redacted (`docs/reliability.md` says so).
- Values of `ENCODED_MIN_LENGTH` (8) characters or more are also redacted in their common
  encodings: base64 (standard and URL-safe, at any alignment within a longer encoded text:
  `user:TOKEN` encoded for HTTP basic auth still hides `TOKEN`'s part), hexadecimal (lower and
  upper case) and URL-encoding. Other transformations (reversed, split, gzip, other
  encodings of a value inside a longer text …) are not caught.
- Values are matched leftmost first and, at one position, longest first. When two secrets
  overlap in the text, the first one is replaced and the rest of the second stays: no complete
  secret value survives, but a fragment of one can.
- A value of four or more characters that occurs inside its own placeholder (a secret named
  `X` whose value is `secret`, say) gets a placeholder without letters instead, so the
  placeholder cannot bring the value back.
"""

from __future__ import annotations

import base64
import re
import urllib.parse
from collections.abc import Callable, Mapping

MIN_SAFE_LENGTH = 4
ENCODED_MIN_LENGTH = 8
_FALLBACK_PLACEHOLDERS = ("[secret]", "[redacted]", "********", "########")


class Redactor:
    """Replaces each configured secret value (name -> value) by `[secret:NAME]`."""

    def __init__(self, secrets: Mapping[str, str]) -> None:
        by_value: dict[str, str] = {}
        for name in sorted(secrets):
            value = secrets[name]
            if len(value) < MIN_SAFE_LENGTH:
                continue
            for form in (value, *encoded_forms(value)):
                by_value.setdefault(form, name)
        values = sorted(by_value, key=lambda value: (-len(value), value))
        self._replacement = {value: _placeholder(by_value[value], values) for value in values}
        self._pattern = re.compile("|".join(map(re.escape, values))) if values else None
        self._first_chars = frozenset(value[0] for value in values)
        self._values = tuple(values)
        self.max_len = len(values[0]) if values else 0

    @property
    def empty(self) -> bool:
        """True when there is nothing to redact."""
        return self._pattern is None

    def redact(self, text: str) -> str:
        """Return `text` with every secret value replaced by its placeholder."""
        if self._pattern is None:
            return text
        return self._pattern.sub(self._substitute, text)

    def stream(self) -> RedactingStream:
        """A redactor for text that arrives in chunks (a secret may be split between them)."""
        return RedactingStream(self)

    def _substitute(self, match: re.Match[str]) -> str:
        return self._replacement[match.group()]

    def _redact_decided(self, buffer: str) -> tuple[str, str]:
        """Split `buffer` into (redacted text that later input cannot change, text to hold)."""
        if self._pattern is None:
            return buffer, ""
        undecided = self._first_undecided(buffer)
        out: list[str] = []
        pos = 0
        for match in self._pattern.finditer(buffer):
            if match.start() >= undecided:
                break
            out += (buffer[pos : match.start()], self._substitute(match))
            pos = match.end()
        safe_end = max(pos, undecided)
        out.append(buffer[pos:safe_end])
        return "".join(out), buffer[safe_end:]

    def _first_undecided(self, buffer: str) -> int:
        """First position where a secret could still begin once more text arrives.

        A position is decided when every secret either fits in the rest of `buffer` (so the
        match there is known) or cannot start with that rest.
        """
        size = len(buffer)
        for pos in range(max(0, size - self.max_len + 1), size):
            if buffer[pos] not in self._first_chars:
                continue
            rest = buffer[pos:]
            if any(len(v) > len(rest) and v.startswith(rest) for v in self._values):
                return pos
        return size


def encoded_forms(value: str) -> list[str]:
    """The forms of `value` redacted besides itself (none for a short value)."""
    if len(value) < ENCODED_MIN_LENGTH:
        return []
    raw = value.encode("utf-8")
    forms = [raw.hex(), raw.hex().upper(), urllib.parse.quote(value, safe="")]
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        forms += _base64_cores(raw, encode)
    return [form for form in dict.fromkeys(forms) if form != value]


def _base64_cores(raw: bytes, encode: Callable[[bytes], bytes]) -> list[str]:
    """The characters of `raw`'s base64 that depend on `raw` alone, for each of the three
    alignments it can have inside a longer encoded text."""
    cores = []
    for offset in range(3):
        text = encode(bytes(offset) + raw).decode("ascii").rstrip("=")
        start, end = -(-8 * offset // 6), 8 * (offset + len(raw)) // 6
        cores.append(text[start:end])
    return [core for core in cores if len(core) >= ENCODED_MIN_LENGTH]


class RedactingStream:
    """Redacts a text stream chunk by chunk.

    Holds back only the end of the input that could be the beginning of a secret (at most
    `max_len - 1` characters), so the concatenated output of `feed` calls and `flush` equals
    `redact` of the concatenated input and never contains a secret split across chunks.
    """

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor
        self._held = ""

    def feed(self, chunk: str) -> str:
        """Take the next chunk; return the redacted text that is safe to emit now."""
        out, self._held = self._redactor._redact_decided(self._held + chunk)
        return out

    def flush(self) -> str:
        """End of input: return the redacted rest. The stream can then be used again."""
        held, self._held = self._held, ""
        return self._redactor.redact(held)


def _placeholder(name: str, values: list[str]) -> str:
    candidates = (f"[secret:{name}]", *_FALLBACK_PLACEHOLDERS)
    for candidate in candidates:
        if not any(len(v) >= MIN_SAFE_LENGTH and v in candidate for v in values):
            return candidate
    return candidates[-1]
