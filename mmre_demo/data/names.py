"""Entity-name normalisation: one rule for scoring, training labels and matching text read in images.

"@Titans", "#Titans", "titans" and "Titans!" name the same thing; a tweet's handle, hashtag and
plain mention of one name must compare equal wherever names are compared.
"""

from __future__ import annotations


def normalise_name(text: str) -> str:
    """Lower case, letters and digits only (any script): `"@Real_Madrid!"` -> `"realmadrid"`."""
    return "".join(ch for ch in text.casefold() if ch.isalnum())
