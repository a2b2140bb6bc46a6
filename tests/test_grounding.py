"""Grounding caption entities in the text read in the image (mmre_demo.grounding), hand-written cases."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mmre_demo.data.schema import Entity
from mmre_demo.encoders.ocr import ImageText, TextLine
from mmre_demo.grounding import also_in_image, edit_budget, ground_entities, levenshtein


def line(text: str, box=(0, 0, 200, 20), conf: float = 0.95, polygon=None) -> TextLine:
    x0, y0, x1, y1 = box
    return TextLine(text, box, polygon or ((x0, y0), (x1, y0), (x1, y1), (x0, y1)), conf)


def read(*lines: TextLine) -> ImageText:
    return ImageText(tuple(lines), 0.1, None, (800, 600))


def ent(name: str) -> Entity:
    return Entity(name, 0, len(name))


def grounded(name: str, *lines: TextLine):
    out = ground_entities([ent(name)], read(*lines))
    return out[0] if out else None


# ---- what must match --------------------------------------------------------------------------
def test_case_does_not_matter():
    assert grounded("Spotify", line("SPOTIFY")).how == "exact"


@pytest.mark.parametrize("name", ["@Spotify", "#spotify", "Spotify!"])
def test_handles_hashtags_and_punctuation_do_not_matter(name):
    assert grounded(name, line("SPOTIFY")) is not None


def test_entity_inside_a_longer_line():
    g = grounded("Standard Chartered", line("Standard Chartered Bank", box=(0, 0, 230, 20)))
    assert g.matched_text == "Standard Chartered"


def test_box_covers_only_the_matched_words():
    g = grounded("Standard Chartered", line("Standard Chartered Bank", box=(0, 0, 230, 20)))
    assert g.box == (0, 0, 180, 20)  # 18 of the line's 23 characters


def test_entity_as_a_run_of_words_in_the_middle_of_a_line():
    g = grounded("Donald Trump", line("PRESIDENT DONALD TRUMP SPEAKS"))
    assert g.matched_text == "DONALD TRUMP"


def test_missing_spaces_in_the_image_text():
    assert grounded("Standard Chartered", line("STANDARDCHARTERED")).how == "exact"


def test_extra_space_in_the_image_text():
    assert grounded("Spotify", line("SPOTI FY")).how == "exact"


def test_one_ocr_slip_is_a_fuzzy_match():
    g = grounded("Spotify", line("SPOTIFV"))
    assert g.how == "fuzzy" and g.score == pytest.approx(6 / 7, abs=1e-4)


def test_possessive_s_on_the_image_word():
    assert grounded("Paige", line("PAIGE'S HOUSE")).matched_text == "PAIGE"


def test_name_split_over_two_neighbouring_lines():
    top = line("standard", box=(100, 250, 190, 280), conf=0.97)
    bottom = line("Chartered", box=(110, 285, 200, 315), conf=0.89)
    g = grounded("Standard Chartered", top, bottom)
    assert g.box == (100, 250, 200, 315) and g.ocr_confidence == 0.89


def test_camel_case_join_splits_real_words():
    assert grounded("Sentosa", line("SentosaIsland,Singapore")).how == "exact"


def test_name_inside_text_merged_by_ocr():
    g = grounded("Donald Trump", line("PRESIDENTDONALDTRUMP"))
    assert g.how == "inside merged text" and g.matched_text == "DONALDTRUMP"


def test_three_letter_name_matches_exactly():
    assert grounded("NBA", line("NBA FINALS")) is not None


def test_rotated_line_gets_a_box_along_its_slant():
    poly = ((0, 100), (100, 0), (120, 20), (20, 120))  # a line drawn at 45 degrees
    g = grounded("Spotify", line("Spotify Music", box=(0, 0, 120, 120), polygon=poly))
    assert g.box[2] < 120 and g.box[1] > 0  # only the first word's part of the slanted line


def test_exact_match_is_preferred_over_a_fuzzy_one():
    g = grounded("Spotify", line("SPOTIFV", box=(0, 0, 100, 20)), line("Spotify", box=(0, 300, 100, 320)))
    assert g.how == "exact" and g.box[1] == 300


# ---- what must not match ----------------------------------------------------------------------
def test_stock_exchange_does_not_match_a_misread():
    assert grounded("Stock Exchange", line("STOCKEXICM")) is None


def test_part_of_a_misread_word_does_not_match():
    assert grounded("Stock", line("STOCKEXICM")) is None


@pytest.mark.parametrize("name", ["UT", "U", "@A"])
def test_names_of_one_or_two_characters_never_match(name):
    assert grounded(name, line("UT U A")) is None


def test_short_names_get_no_fuzzy_slip():
    assert grounded("NBA", line("NBC")) is None


def test_real_word_containing_the_name_is_not_a_match():
    assert grounded("Paris", line("PARISHIONERS")) is None


def test_name_is_not_found_across_a_camel_case_prefix():
    assert grounded("Donald", line("McDonald's")) is None


def test_lines_far_apart_are_not_joined():
    top, bottom = line("standard", box=(100, 20, 190, 50)), line("Chartered", box=(500, 500, 600, 530))
    assert grounded("Standard Chartered", top, bottom) is None


def test_different_club_is_not_a_fuzzy_match():
    assert grounded("Manchester United", line("MANCHESTER CITY")) is None


# ---- output -----------------------------------------------------------------------------------
def test_no_text_read_grounds_nothing():
    assert ground_entities([ent("Spotify")], ImageText(note="OCR failed")) == []


def test_only_grounded_entities_are_returned_in_entity_order():
    out = ground_entities([ent("Warner Music Group"), ent("Spotify"), ent("NYSE")],
                          read(line("NYSE", box=(0, 50, 60, 70)), line("Spotify")))
    assert [g.entity.text for g in out] == ["Spotify", "NYSE"]


def test_grounding_serialises_to_json():
    d = json.loads(json.dumps(grounded("Spotify", line("SPOTIFY")).to_dict()))
    assert d["entity"]["text"] == "Spotify" and d["box"] == [0, 0, 200, 20] and d["ocr_confidence"] == 0.95


@pytest.mark.parametrize("n,budget", [(3, 0), (4, 0), (5, 1), (9, 1), (10, 2), (14, 2), (15, 3), (40, 3)])
def test_edit_budget_grows_about_one_per_five_characters(n, budget):
    assert edit_budget(n) == budget


def test_levenshtein_stops_early_above_the_limit():
    assert levenshtein("stockexchange", "stockexicm") == 6 and levenshtein("stockexchange", "stockexicm", 2) == 3


def test_grounding_imports_no_torch():
    code = "import sys, mmre_demo.grounding; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- names only in the image ------------------------------------------------------------------
class DictTagger:
    """Tags the listed names wherever they occur (case-sensitive), like a perfect NER model would."""

    def __init__(self, names: dict[str, str]):
        self.names, self.calls = names, 0

    def tag_batch(self, captions):
        self.calls += 1
        out = []
        for c in captions:
            found = []
            for name, etype in self.names.items():
                i = c.find(name)
                if i >= 0:
                    found.append(Entity(name, i, i + len(name), etype, 0.9))
            out.append(found)
        return out


def test_image_only_names_are_listed_with_their_line():
    tagger = DictTagger({"Standard Chartered": "ORG", "Gerrard": "PER"})
    shirt = line("Standard Chartered Bank", box=(0, 0, 230, 20))
    out = also_in_image(tagger, read(shirt), [ent("Gerrard"), ent("Pogba")])
    got = [(e.text, e.type, e.line.text, e.box) for e in out]
    assert got == [("Standard Chartered", "ORG", shirt.text, (0, 0, 180, 20))]


def test_names_of_caption_entities_are_not_listed_whatever_their_case():
    tagger = DictTagger({"SPOTIFY": "ORG"})
    assert also_in_image(tagger, read(line("SPOTIFY")), [ent("@Spotify")]) == []


def test_longer_image_name_containing_a_caption_entity_is_not_listed():
    tagger = DictTagger({"PRESIDENT DONALD TRUMP": "PER"})
    assert also_in_image(tagger, read(line("PRESIDENT DONALD TRUMP")), [ent("Donald Trump")]) == []


def test_name_in_the_caption_text_but_not_tagged_there_is_not_listed():
    tagger = DictTagger({"Hannity": "PER"})
    out = also_in_image(tagger, read(line("Hannity")), [ent("Trump")], caption="Trump talks to Hannity tonight")
    assert out == []


def test_name_inside_a_caption_handle_is_not_listed():
    out = also_in_image(DictTagger({"PAIGE": "PER"}), read(line("PAIGE'S HOUSE")), [ent("@TotalDivas")],
                        caption=".@RealPaigeWWE has a confession to make tonight on @TotalDivas")
    assert out == []


def test_low_confidence_tagger_names_are_not_listed():
    class Unsure(DictTagger):
        def tag_batch(self, captions):
            return [[Entity(e.text, e.start, e.end, e.type, 0.5) for e in ents] for ents in super().tag_batch(captions)]

    assert also_in_image(Unsure({"STOCKEXCM": "ORG"}), read(line("STOCKEXCM")), []) == []


def test_a_name_read_twice_is_listed_once():
    tagger = DictTagger({"CNN": "ORG"})
    out = also_in_image(tagger, read(line("CNN"), line("CNN.com", box=(0, 100, 80, 120))), [])
    assert [e.text for e in out] == ["CNN"]


def test_short_image_names_are_not_listed():
    assert also_in_image(DictTagger({"UN": "ORG"}), read(line("UN says")), []) == []


def test_no_image_text_does_not_call_the_tagger():
    tagger = DictTagger({"CNN": "ORG"})
    assert also_in_image(tagger, ImageText(note="OCR failed"), []) == [] and tagger.calls == 0


@pytest.fixture(scope="module")
def ner_tagger():
    from mmre_demo.model.ner import NerTagger

    return NerTagger.from_pretrained()


def test_shipped_tagger_finds_a_name_only_in_the_image(ner_tagger):
    out = also_in_image(ner_tagger, read(line("Barack Obama visits Berlin")), [ent("Berlin")])
    assert [e.text for e in out] == ["Barack Obama"]
