"""The tagger's non-entity filter: time words, pronouns and letterless spans are never names."""

from __future__ import annotations

import pytest

from mmre_demo.model.ner.nonentities import drop_non_entities, is_non_entity


@pytest.mark.parametrize("span", ["Sunday", "October 2018", "My", "$", "2018", "10:30", "Saturday night", "#Sunday"])
def test_time_words_pronouns_and_letterless_spans_are_not_entities(span):
    assert is_non_entity(span.split())


@pytest.mark.parametrize("span", ["US", "Trump", "May Day Parade", "Sunday Times", "The Beatles", "NASA"])
def test_names_stay_entities(span):
    assert not is_non_entity(span.split())


def test_only_the_non_entity_spans_are_set_to_o():
    words = "My trip to Paris on Sunday with Bob".split()
    tags = ["B-ORG", "O", "O", "B-LOC", "O", "B-LOC", "O", "B-PER"]
    assert drop_non_entities(words, tags) == ["O", "O", "O", "B-LOC", "O", "O", "O", "B-PER"]
