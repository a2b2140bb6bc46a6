from pathlib import Path

import pytest

from mmre_demo.data.mnre import DataFormatError, example_to_mnre_line, parse_mnre_line, read_mnre

GOOD = ("{'token': ['RT', '@WLWT', ':', 'Bill', 'Cosby', \"'s\", 'star', 'on', 'Hollywood', 'Walk', 'of', "
        "'Fame', 'vandalized'], 'h': {'name': 'Bill Cosby', 'pos': [3, 5]}, 't': {'name': "
        "'Hollywood Walk of Fame', 'pos': [8, 12]}, 'img_id': 'x.jpg', 'relation': '/per/misc/present_in'}")


def test_parse_good_line_gives_character_spans():
    ex = parse_mnre_line(GOOD)
    assert ex.caption[ex.head.start : ex.head.end] == "Bill Cosby"
    assert ex.caption[ex.tail.start : ex.tail.end] == "Hollywood Walk of Fame"
    assert ex.relation == "/per/misc/present_in" and ex.label_id == 16 and ex.img_id == "x.jpg"


def test_round_trip_through_writer():
    ex = parse_mnre_line(GOOD)
    line = example_to_mnre_line(list(ex.tokens), ("Bill Cosby", 3, 5), ("Hollywood Walk of Fame", 8, 12),
                                ex.relation, ex.img_id)
    assert parse_mnre_line(line) == ex


@pytest.mark.parametrize(
    "line, reason",
    [
        ("{'token': ['a'", "not a Python dict literal"),
        ("__import__('os').system('echo hi')", "not a Python dict literal"),
        ("[1, 2]", "not a dict"),
        ("{'token': ['a', 'b'], 'h': {'pos': [0, 1]}, 'relation': 'None'}", "missing keys ['t']"),
        ("{'token': ['a', 'b'], 'h': {'pos': [0, 5]}, 't': {'pos': [1, 2]}, 'relation': 'None'}", "out of range"),
        ("{'token': ['a', 'b'], 'h': {'pos': [0, 1]}, 't': {'pos': [1, 2]}, 'relation': '/x/y'}", "unknown relation"),
        ("{'token': ['a', 'b'], 'h': {'pos': [0, 1]}, 't': {'pos': [0, 1]}, 'relation': 'None'}", "same span"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path: Path, line: str, reason: str):
    f = tmp_path / "data.txt"
    f.write_text(GOOD + "\n" + line + "\n")
    with pytest.raises(DataFormatError) as err:
        read_mnre(f)
    assert f"{f}:2:" in str(err.value) and reason in str(err.value)
    examples, skipped = read_mnre(f, skip_bad=True)
    assert len(examples) == 1 and skipped == 1


def test_nested_spans_are_kept():
    line = ("{'token': ['Darien', 'Lake', 'Performing', 'Arts'], 'h': {'pos': [0, 2]}, 't': {'pos': [0, 4]}, "
            "'relation': '/loc/loc/contain'}")
    ex = parse_mnre_line(line)
    assert (ex.head.text, ex.tail.text) == ("Darien Lake", "Darien Lake Performing Arts")


def test_missing_file_is_a_clear_error(tmp_path: Path):
    with pytest.raises(DataFormatError, match="no such file"):
        read_mnre(tmp_path / "nope.txt")


def test_shared_files_parse(shared_data):
    for name, n in (("mnre_train.txt", 12247), ("mnre_val.txt", 1624)):
        examples, skipped = read_mnre(shared_data / "mnre" / name)
        assert len(examples) == n and skipped == 0


def test_label_order_matches_rel2id(shared_data):
    import json

    from mmre_demo.data.labels import RELATIONS

    rel2id = json.loads((shared_data / "mnre" / "rel2id.json").read_text())
    assert list(RELATIONS) == sorted(rel2id, key=rel2id.get)
