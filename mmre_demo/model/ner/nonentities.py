"""Spans a tagger marks as entities that are never names for this product: weekdays, months and other
time words, pronouns and determiners, and spans with no letter at all ("$", "2018", "10:30").

The shipped tagger tags such spans now and then ("Sunday" ORG, "October" LOC, "My" ORG, "$" LOC), and the
relation model then pairs them; dropping them is measured in `weights/ner/README.md` (Twitter NER F1 and the
end-to-end false positives they caused).
"""

from __future__ import annotations

from collections.abc import Sequence

from mmre_demo.model.ner.bio import bio_spans

_WEEKDAYS = "monday tuesday wednesday thursday friday saturday sunday mon tue tues wed thu thur thurs fri sat sun"
_MONTHS = ("january february march april may june july august september october november december "
           "jan feb mar apr jun jul aug sep sept oct nov dec")
_TIME = "today tonight tomorrow yesterday morning afternoon evening night weekend week day days year years am pm"
# no "us" ("US" is a country) and no articles (Twitter-NER's gold has "the" as part of names)
_PRONOUNS = "i me my mine we our ours you your yours he him his she her hers it its they them their theirs"
NON_ENTITY_WORDS = frozenset(" ".join((_WEEKDAYS, _MONTHS, _TIME, _PRONOUNS)).split())


def is_non_entity(words: Sequence[str]) -> bool:
    """True when a span cannot be a name: no letter in it, or every word a time word, pronoun or number
    ("Sunday", "October 2018", "My", "$"); "May" the month and "May" the name cannot be told apart here,
    so a one-word "May" is dropped too (measured: rare in MNRE)."""
    text = " ".join(words)
    if not any(ch.isalpha() for ch in text):
        return True
    tokens = [w.strip(".,:;!?'\"#@()").lower() for w in words]
    return all(t in NON_ENTITY_WORDS or t.isdigit() or not t for t in tokens)


def drop_non_entities(words: Sequence[str], tags: Sequence[str]) -> list[str]:
    """The tags with every non-entity span (see `is_non_entity`) set to O."""
    out = list(tags)
    for a, b, _ in bio_spans(tags):
        if is_non_entity(words[a:b]):
            out[a:b] = ["O"] * (b - a)
    return out
