"""Captions as typed and as the models read them (`mmre_demo.data.text`)."""

from __future__ import annotations

import unicodedata

import pytest

from mmre_demo.data.schema import Entity, InputError, check_caption
from mmre_demo.data.text import clean_caption, is_invisible, unread_script


def test_plain_captions_are_kept_as_they_are():
    c = clean_caption("Obama visited Paris.")
    assert c.text == c.typed and not c.changed
    assert c.to_typed(Entity("Paris", 14, 19)) == Entity("Paris", 14, 19)


@pytest.mark.parametrize("mark", ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u200e", "\u200f",
                                  "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068",
                                  "\u2069", "\u061c", "\x00", "\x07", "\x1b", "\x7f"])
def test_zero_width_bidi_and_control_characters_are_removed(mark):
    typed = f"Angela Mer{mark}kel met Macron"
    c = clean_caption(typed)
    assert c.text == "Angela Merkel met Macron" and is_invisible(mark)
    start, end = c.typed_span(7, 13)  # "Merkel" in the clean text
    assert (start, end) == (7, 14) and typed[start:end] == f"Mer{mark}kel"
    assert c.to_clean(Entity("", start, end)) == Entity("Merkel", 7, 13)


def test_tabs_and_line_breaks_are_kept():
    assert clean_caption("Paris\tRome\nBerlin\r\n").text == "Paris\tRome\nBerlin\r\n"


def test_nfc_composes_and_spans_cover_the_typed_characters():
    typed = "Cafe\u0301 de Flore in Saint-Germain, E\u0301lise"  # decomposed accents
    c = clean_caption(typed)
    assert c.text == unicodedata.normalize("NFC", typed) and len(c.text) == len(typed) - 2
    k = c.text.index("Élise")
    start, end = c.typed_span(k, k + 5)
    assert typed[start:end] == "E\u0301lise"
    assert c.to_typed(Entity("Café", 0, 4)) == Entity("Café", 0, 5)


def test_an_entity_made_only_of_invisible_characters_is_empty_on_the_clean_text():
    c = clean_caption("Paris \u200b\u200b Rome")
    assert c.to_clean(Entity("", 6, 8)).text == ""


def test_invisible_only_captions_are_refused_with_a_message():
    for caption in ("\u200b", "\u202e\u202c", "\u200b \u200b\n", "\x00\x01"):
        with pytest.raises(InputError, match="no visible text"):
            check_caption(caption)
    with pytest.raises(InputError, match="empty"):
        check_caption("   ")
    assert check_caption("\u200bParis") == "\u200bParis"


@pytest.mark.parametrize(("caption", "script"), [
    ("特朗普在新加坡会见了金正恩。", "Chinese"),
    ("東京タワーで山田さんに会いました", "Japanese"),
    ("문재인 대통령이 평양을 방문했다", "Korean"),
    ("التقى ترامب مع كيم في سنغافورة", "Arabic"),
    ("Путин встретился с Макроном в Париже", "Cyrillic"),
])
def test_a_caption_in_a_script_the_models_do_not_read_is_named(caption, script):
    assert unread_script(caption) == script


@pytest.mark.parametrize("caption", ["Obama visited Paris.", "Café Zürich, naïve façade",
                                     "Trump met 金正恩 in Singapore", "2024 🚀🚀", ""])
def test_latin_script_or_no_letters_is_read(caption):
    assert unread_script(caption) is None
