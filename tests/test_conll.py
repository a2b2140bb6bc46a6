"""Twitter CoNLL reader: blank lines, IMGID lines, OTHER -> MISC, malformed lines name file and line."""

from __future__ import annotations

import pytest

from mmre_demo.data.conll import TAGS, normalise_tag, parse_conll, read_conll, twitter_ner_files
from mmre_demo.data.mnre import DataFormatError
from mmre_demo.data.paths import shared_data_dir


@pytest.fixture(scope="module")
def shared_data_ner():
    d = shared_data_dir()
    if not (d / "twitter_ner" / "twitter2017" / "valid.txt").is_file():
        pytest.skip(f"Twitter NER data not found at {d}/twitter_ner (set MMRE_DATA_DIR; see README 'Data')")
    return d

SAMPLE = """IMGID:1015799
RT\tO
George\tB-PER
Zimmerman\tI-PER
#Oscars\tB-OTHER

IMGID:42
Paris\tB-LOC


IMGID:43
New\tB-ORG
York\tI-ORG
Times\tI-ORG
"""


def test_reads_tweets_and_maps_other_to_misc(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text(SAMPLE, encoding="utf-8")
    sents = read_conll(f)
    assert [s.img_id for s in sents] == ["1015799", "42", "43"]
    assert sents[0].tokens == ("RT", "George", "Zimmerman", "#Oscars")
    assert sents[0].tags == ("O", "B-PER", "I-PER", "B-MISC")
    assert sents[2].tags == ("B-ORG", "I-ORG", "I-ORG")  # last tweet without a final blank line
    assert sents[1].line_no == 7


def test_imgid_without_blank_line_still_starts_a_tweet():
    sents = parse_conll(["IMGID:1\n", "a\tO\n", "IMGID:2\n", "b\tB-LOC\n"])
    assert [(s.img_id, s.tokens) for s in sents] == [("1", ("a",)), ("2", ("b",))]


def test_no_imgid_lines_and_crlf():
    sents = parse_conll(["a\tO\r\n", "b\tB-PER\r\n", "\r\n", "c\tO\r\n"])
    assert [s.tokens for s in sents] == [("a", "b"), ("c",)]


@pytest.mark.parametrize("bad, line_no", [
    ("IMGID:1\nfoo\tO\nbar\n", 3),  # no tag
    ("IMGID:1\nfoo\tB-XYZ\n", 2),  # unknown type
    ("IMGID:1\nfoo\tO\tO\n", 2),  # extra column
    ("IMGID:1\n\nfoo\tE-PER\n", 3),  # unknown prefix
])
def test_malformed_line_names_file_and_line(tmp_path, bad, line_no):
    f = tmp_path / "bad.txt"
    f.write_text(bad, encoding="utf-8")
    with pytest.raises(DataFormatError, match=rf"bad\.txt:{line_no}: "):
        read_conll(f)


def test_missing_file():
    with pytest.raises(FileNotFoundError):
        read_conll("/nonexistent/twitter.txt")


def test_tag_set():
    assert TAGS[0] == "O" and len(TAGS) == 9
    assert normalise_tag("I-OTHER") == "I-MISC"


def test_real_files_read(shared_data_ner):
    for split in ("train", "valid"):
        for f in twitter_ner_files(shared_data_ner, split):
            sents = read_conll(f)
            assert sents and all(len(s.tokens) == len(s.tags) for s in sents)
            assert all(t in TAGS for s in sents for t in s.tags)
    counts = {f.parent.name: len(read_conll(f)) for f in twitter_ner_files(shared_data_ner, "valid")}
    assert counts == {"twitter2015": 1000, "twitter2017": 723}
