"""What the uncased backbone cannot see: a word's shape (kind x casing) and its cased characters."""

from __future__ import annotations

import re
import unicodedata

_KINDS = ("pad", "word", "number", "punct", "url", "mention", "hashtag", "symbol")
_CASINGS = ("none", "lower", "title", "upper", "single_upper", "mixed")
NUM_SHAPES = len(_KINDS) * len(_CASINGS)
_URL_RE = re.compile(r"^(?:https?://|www\.)", re.IGNORECASE)


def _kind(token: str) -> str:
    if _URL_RE.match(token):
        return "url"
    if len(token) > 1 and token[0] == "@":
        return "mention"
    if len(token) > 1 and token[0] == "#":
        return "hashtag"
    if any(c.isalpha() for c in token):
        return "word"
    if any(c.isdigit() for c in token):
        return "number"
    if all(unicodedata.category(c).startswith("P") for c in token):
        return "punct"
    return "symbol"


def _casing(token: str) -> str:
    letters = [c for c in token.lstrip("@#") if c.isalpha()]
    if not letters:
        return "none"
    if len(letters) == 1:
        return "single_upper" if letters[0].isupper() else "lower"
    if all(c.islower() for c in letters):
        return "lower"
    if all(c.isupper() for c in letters):
        return "upper"
    if letters[0].isupper() and all(c.islower() for c in letters[1:]):
        return "title"
    return "mixed"


def word_shape(token: str) -> int:
    """Shape id in [1, NUM_SHAPES): kind x casing (0 is padding)."""
    return _KINDS.index(_kind(token)) * len(_CASINGS) + _CASINGS.index(_casing(token))


CHAR_VOCAB = 512  # ids: 0 pad; Latin-1 code points as themselves (+1); the rest hashed into [257, 512)


def char_ids(token: str, max_chars: int) -> list[int]:
    """Cased character ids of a word (the backbone is uncased; these keep the casing)."""
    return [ord(c) + 1 if ord(c) < 256 else 257 + ord(c) % (CHAR_VOCAB - 257) for c in token[:max_chars]]
