"""Raw caption -> words with character offsets (URLs, @/# split from names, numbers, emoji)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_TRAIL = r"""[.,!?;:)\]}"'”’]"""
_TOKEN_RE = re.compile(
    rf"""
    (?P<url>(?:https?://|www\.)\S+?(?={_TRAIL}*(?:\s|$)))   # URL, trailing punctuation left out
    |(?P<prefix>[@#])(?=[^\W_]|_)                            # '@'/'#' split from the name (Twitter-2017 style)
    |(?P<num>\d+(?:[.,:]\d+)*(?!\w))                          # 3, 4.99, 10:30, 1,000
    |(?P<word>\w+)                                            # letters, digits, underscores
    |(?P<other>\S[\u200d\ufe0e\ufe0f\u20e3\U0001F3FB-\U0001F3FF]*)  # one symbol / emoji (+ modifiers)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Word:
    text: str
    start: int
    end: int


def pre_tokenize(caption: str) -> list[Word]:
    """Split a raw caption into words whose `[start, end)` index the original string."""
    return [Word(m.group(), m.start(), m.end()) for m in _TOKEN_RE.finditer(caption)]
