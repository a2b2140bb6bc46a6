"""`mmre extract` input: JSON Lines, CSV and MNRE readers, image resolution, and every bad input of issue 15."""

from __future__ import annotations

import json
import re
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from mmre_demo.data.images import image_id
from mmre_demo.data.schema import InputError
from mmre_demo.extract.images import read_and_decode
from mmre_demo.extract.posts import InputProblem, Post
from mmre_demo.extract.readers import count_items, read_items, sniff_format
from tests.support.extract_fakes import write_jsonl


def _items(path, **kw):
    return list(read_items(path, **kw))


def test_jsonl_posts_and_bad_records(tmp_path):
    f = write_jsonl(tmp_path / "in.jsonl", [
        {"id": 1, "caption": "Ann visits Paris", "image": None},
        {"id": "b", "caption": "Bob at Acme", "image": "x.jpg"},
        "{not json",
        "[1, 2]",
        {"id": 1, "caption": "again id 1"},
        {"caption": "no id"},
        {"id": 3, "caption": ""},
        {"id": 4, "caption": "x" * 20_000},
        {"id": 5, "caption": 42},
        {"id": 6, "caption": "ok", "image": 7},
        "",
    ])
    items = _items(f, images_dir=None)
    posts = [i for i in items if isinstance(i, Post)]
    probs = {i.line: i for i in items if isinstance(i, InputProblem)}
    assert [(p.id, p.line, p.caption) for p in posts] == [("1", 1, "Ann visits Paris"), ("b", 2, "Bob at Acme")]
    assert posts[0].image_path is None and posts[1].image_path == str(tmp_path / "x.jpg")
    assert "malformed JSON" in probs[3].reason and probs[3].raw == "{not json" and probs[3].key == "line:3"
    assert "JSON object" in probs[4].reason
    assert "duplicate id '1'" in probs[5].reason and "line 1" in probs[5].reason and probs[5].key == "line:5"
    assert "no usable 'id'" in probs[6].reason
    assert "empty" in probs[7].reason and probs[7].key == "3" and probs[7].stage == "caption"
    assert "20000 characters" in probs[8].reason and "limit is 2000" in probs[8].reason
    assert "'caption' must be a string" in probs[9].reason
    assert "'image' must be a path or null" in probs[10].reason
    assert count_items(f) == len(items) == 10


def test_images_resolve_against_images_dir_or_stay_absolute(tmp_path):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    f = write_jsonl(tmp_path / "in.jsonl", [{"id": 1, "caption": "A", "image": "a.jpg"},
                                            {"id": 2, "caption": "B", "image": "/abs/b.jpg"}])
    a, b = _items(f, images_dir=imgs)
    assert a.image == "a.jpg" and a.image_path == str(imgs / "a.jpg") and b.image_path == "/abs/b.jpg"


def test_csv_same_columns_and_errors(tmp_path):
    f = tmp_path / "in.csv"
    f.write_text('id,caption,image\n1,"Ann, in Paris",\n2,Bob at Acme,b.png\n3,"multi\nline caption",\n'
                 '4,too,many,fields\n1,dup,\n5,,\n', encoding="utf-8")
    items = _items(f)
    posts = [i for i in items if isinstance(i, Post)]
    probs = [i for i in items if isinstance(i, InputProblem)]
    assert [(p.id, p.line, p.caption, p.image) for p in posts] == [
        ("1", 2, "Ann, in Paris", None), ("2", 3, "Bob at Acme", "b.png"), ("3", 4, "multi\nline caption", None)]
    assert [(p.line, p.key) for p in probs] == [(6, "line:6"), (7, "line:7"), (8, "5")]
    assert "4 fields" in probs[0].reason and "duplicate id '1'" in probs[1].reason and "empty" in probs[2].reason


def test_csv_without_caption_column_is_refused_before_anything_runs(tmp_path):
    f = tmp_path / "in.csv"
    f.write_text("id,text,image\n1,hello,\n", encoding="utf-8")
    with pytest.raises(InputError, match="no 'caption' column.*columns: id, text, image"):
        read_items(f)
    (tmp_path / "empty.csv").write_text("", encoding="utf-8")
    with pytest.raises(InputError, match="empty"):
        read_items(tmp_path / "empty.csv")


def test_mnre_one_post_per_unique_caption_and_image(tmp_path):
    line = ("{{'token': ['Bill', 'Cosby', 'in', 'Hollywood'], 'h': {{'name': 'Bill Cosby', 'pos': [0, 2]}}, "
            "'t': {{'name': 'Hollywood', 'pos': [3, 4]}}, 'img_id': '{img}', 'relation': '{rel}'}}")
    f = tmp_path / "m.txt"
    f.write_text("\n".join([line.format(img="a.jpg", rel="/per/misc/present_in"),
                            line.format(img="a.jpg", rel="None"),  # same post, another pair
                            "{'token': oops",
                            line.format(img="b.jpg", rel="None")]) + "\n", encoding="utf-8")
    items = _items(f)  # no --images: text only
    assert [(i.id, i.caption, i.image) for i in items if isinstance(i, Post)] == [
        ("1", "Bill Cosby in Hollywood", None), ("4", "Bill Cosby in Hollywood", None)]
    assert [i.line for i in items if isinstance(i, InputProblem)] == [3]
    with_images = [i for i in _items(f, images_dir=tmp_path) if isinstance(i, Post)]
    assert [i.image_path for i in with_images] == [str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg")]


def test_mnre_val_reads_931_posts(shared_data):
    items = list(read_items(shared_data / "mnre" / "mnre_val.txt"))
    assert len(items) == 931 and all(isinstance(i, Post) for i in items)


def test_format_sniffing(tmp_path):
    assert sniff_format("a.jsonl") == "jsonl" and sniff_format("a.CSV") == "csv" and sniff_format("x.txt") == "mnre"
    assert sniff_format("a.json", "jsonl") == "jsonl"
    with pytest.raises(InputError, match="cannot tell the format.*'.json'"):
        sniff_format("a.json")
    with pytest.raises(InputError, match="no such input file"):
        read_items(tmp_path / "nope.jsonl")
    with pytest.raises(InputError, match="--images .*no such folder"):
        read_items(write_jsonl(tmp_path / "a.jsonl", []), images_dir=tmp_path / "none")


def test_reading_is_streaming(tmp_path):
    """100k posts: the reader yields the first one without reading the rest into memory."""
    f = tmp_path / "big.jsonl"
    with f.open("w") as fh:
        for i in range(100_000):
            fh.write(json.dumps({"id": i, "caption": f"Post {i}"}) + "\n")
    it = read_items(f)
    assert next(it).id == "0"
    assert it.gi_frame is not None  # a generator, mid-file


def _png_header_only(path: Path, w: int, h: int) -> None:
    """A PNG whose header claims w x h pixels (decoding it would need 1.2 GB)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b""))


def test_bad_images_become_image_errors(tmp_path):
    Image.new("RGB", (32, 24), "red").save(tmp_path / "ok.png")
    (tmp_path / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    _png_header_only(tmp_path / "huge.png", 20_000, 20_000)

    def post(name):
        return Post("1", 1, "cap", name, str(tmp_path / name))

    ok = read_and_decode(post("ok.png"))
    assert ok.image.size == (32, 24) and ok.image_id == image_id(tmp_path / "ok.png")  # the app's id
    for name, pattern in (("missing.jpg", "no such file"), ("corrupt.jpg", "not an image|corrupt"),
                          ("huge.png", "huge.png.*(too large|20000 x 20000).*limit is 40 MP")):
        res = read_and_decode(post(name))
        assert res.prediction is None and res.stage == "image", name
        assert re.search(pattern, res.error), (name, res.error)
    assert read_and_decode(Post("2", 2, "cap")).image is None  # no image: text only
