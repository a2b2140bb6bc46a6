"""Two corrections of the tagger's spans, each measured on the MNRE dev split (`weights/ner/README.md`):

- **common words**: a span made only of words that people write in lower case most of the time
  ("Football", "Music", "Govt", "The") is no name. The lexicon is counted from training text only
  (`common_words`, `mmre ner-lexicon`) and saved in the tagger's config.
- **hyphenated names**: Twitter text splits "Ocasio - Cortez" and "Kim Jong - un" into words around a lone
  "-"; the tagger then finds two people, who the relation model calls peers. Two spans joined by a lone "-"
  become one when both are people and the right one is a single word after a longer name, or when one side is a single lower-case word ("un", "al").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from mmre_demo.model.ner.bio import bio_spans

_HYPHENS = frozenset({"-", "–", "‐"})


def _key(word: str) -> str:
    return word.strip(".,:;!?'\"#@()").lower()


def common_words(sentences: Iterable[Sequence[str]], min_count: int = 3, min_lower_share: float = 0.4) -> list[str]:
    """Words seen at least `min_count` times, written all in lower case in at least `min_lower_share` of them
    (sorted). Only alphabetic words are counted; a capital at the start of a tweet counts as a capital."""
    seen: Counter[str] = Counter()
    lower: Counter[str] = Counter()
    for words in sentences:
        for w in words:
            if not w.isalpha():
                continue
            seen[w.lower()] += 1
            lower[w.lower()] += w.islower()
    return sorted(w for w, n in seen.items() if n >= min_count and lower[w] / n >= min_lower_share)


def drop_common_word_spans(words: Sequence[str], tags: Sequence[str], common: frozenset[str]) -> list[str]:
    """The tags with every one-word span whose word is in `common` set to O (titles of works made of common
    words, "Portrait of a Woman", stay: measured on dev, dropping them cost more gold entities than errors)."""
    out = list(tags)
    for a, b, _ in bio_spans(tags):
        if b - a == 1 and _key(words[a]) in common:
            out[a:b] = ["O"] * (b - a)
    return out


def _joinable(words: Sequence[str], left: tuple[int, int, str], right: tuple[int, int, str]) -> bool:
    """Two spans with a lone hyphen between them that are one name (see the module docstring)."""
    if right[0] != left[1] + 1 or words[left[1]] not in _HYPHENS:
        return False
    if left[2] == right[2] == "PER" and left[1] - left[0] > 1 and right[1] - right[0] == 1:
        return True  # "Alexandria Ocasio - Cortez"; not "Trump - Kim", two people
    return any(b - a == 1 and words[a][:1].islower() for a, b, _ in (left, right))


def join_hyphenated(words: Sequence[str], tags: Sequence[str]) -> list[str]:
    """The tags with hyphen-joined spans (`_joinable`) merged into the left span's type; a lower-case word
    tagged O right after "Name -" ("Kim Jong - un") joins the name too."""
    out = list(tags)
    spans = bio_spans(out)
    for left, right in zip(spans, spans[1:]):
        if _joinable(words, left, right):
            out[left[1]: right[1]] = [f"I-{left[2]}"] * (right[1] - left[1])
    for a, b, etype in bio_spans(out):
        nxt = b + 1
        if (nxt < len(words) and words[b] in _HYPHENS and out[nxt] == "O" and words[nxt].isalpha()
                and words[nxt].islower() and len(words[nxt]) <= 3 and (nxt + 1 == len(words) or out[nxt + 1] == "O")):
            out[b: nxt + 1] = [f"I-{etype}"] * 2
    return out
