"""The transfer set: Twitter NER train/valid tweets with two or more entities; test files are never read."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmre_demo.data.schema import InputError
from mmre_demo.data.transfer import transfer_captions, transfer_files

TWEETS = """IMGID:1
RT	O
@ann	O
:	O
Barack	B-PER
Obama	I-PER
visits	O
Paris	B-LOC
with	O
NASA	B-ORG

IMGID:2
Only	O
Madonna	B-PER
tonight	O

IMGID:3
Madonna	B-PER
and	O
madonna	B-PER
!	O

IMGID:4
No	O
entities	O
"""


def _write(folder: Path, name: str, text: str = TWEETS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def test_tweets_with_two_entities_become_captions_with_typed_spans(tmp_path):
    captions = list(transfer_captions([_write(tmp_path / "twitter2017", "train.txt")]))
    assert len(captions) == 1
    c = captions[0]
    assert c.caption == "RT @ann : Barack Obama visits Paris with NASA" and c.img_id == "1"
    assert [(e.text, e.type) for e in c.entities] == [("Barack Obama", "PER"), ("Paris", "LOC"), ("NASA", "ORG")]
    assert all(c.caption[e.start:e.end] == e.text for e in c.entities)
    assert c.source == "twitter2017/train.txt"


def test_tweets_with_fewer_than_two_entity_names_are_skipped(tmp_path):
    """Tweet 2 has one entity, tweet 3 one name twice, tweet 4 none: no pair to form."""
    path = _write(tmp_path, "valid.txt")
    assert [c.img_id for c in transfer_captions([path])] == ["1"]
    assert [c.img_id for c in transfer_captions([path], min_entities=1)] == ["1", "2", "3"]


@pytest.mark.parametrize("name", ["test.txt", "Test.txt", "twitter2015_test.txt", "mnre_TEST.txt"])
def test_a_file_named_test_is_refused_before_anything_is_read(tmp_path, name, monkeypatch):
    import mmre_demo.data.transfer as transfer

    read = []
    monkeypatch.setattr(transfer, "read_conll", lambda path: read.append(path) or [])
    good, held_out = _write(tmp_path, "train.txt"), _write(tmp_path, name)
    with pytest.raises(InputError, match="test split is held out"):
        list(transfer_captions([good, held_out]))
    assert read == []  # not even the good file before it


def test_the_default_files_are_both_years_train_and_valid(tmp_path):
    names = [f"{p.parent.name}/{p.name}" for p in transfer_files(tmp_path)]
    assert sorted(names) == ["twitter2015/train.txt", "twitter2015/valid.txt", "twitter2017/train.txt",
                             "twitter2017/valid.txt"]


def test_the_twitter_files_give_thousands_of_captions(shared_data):
    if not (shared_data / "twitter_ner" / "twitter2015" / "train.txt").is_file():
        pytest.skip(f"Twitter NER data not found at {shared_data}/twitter_ner (set MMRE_DATA_DIR)")
    captions = list(transfer_captions(transfer_files(shared_data)))
    assert len(captions) > 3000
    assert all(len({e.text.lower() for e in c.entities}) >= 2 for c in captions)
