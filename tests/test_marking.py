import pytest

from mmre_demo.data.schema import Entity, InputError, check_entities
from mmre_demo.encoders.text import load_text_backbone
from mmre_demo.model.inputs import encode_pair, mark_pair


def ent(caption: str, text: str, start: int = 0) -> Entity:
    s = caption.index(text, start)
    return Entity(text, s, s + len(text))


@pytest.fixture(scope="module")
def tokenizer():
    return load_text_backbone("minilm")[0]


def test_marks_in_order():
    c = "Bill Cosby visits Hollywood"
    m = mark_pair(c, ent(c, "Bill Cosby"), ent(c, "Hollywood"))
    assert m.text == " [ Bill Cosby ]  visits  { Hollywood } "
    assert m.text[m.head_char] == "[" and m.text[m.tail_char] == "{"


def test_reversed_order_tail_before_head():
    c = "Bill Cosby visits Hollywood"
    m = mark_pair(c, ent(c, "Hollywood"), ent(c, "Bill Cosby"))
    assert m.text == " { Bill Cosby }  visits  [ Hollywood ] "


def test_adjacent_spans_close_before_open():
    c = "ab"
    m = mark_pair(c, Entity("a", 0, 1), Entity("b", 1, 2))
    assert m.text == " [ a ]  { b } "


def test_nested_spans_outer_opens_first_inner_closes_first():
    c = "New York City rocks"
    m = mark_pair(c, Entity("New York", 0, 8), Entity("New York City", 0, 13))
    assert m.text == " {  [ New York ]  City }  rocks"
    m2 = mark_pair(c, Entity("New York City", 0, 13), Entity("City", 9, 13))
    assert m2.text == " [ New York  { City }  ]  rocks"


def test_entity_at_sentence_end_and_char_map():
    c = "Visit Paris"
    m = mark_pair(c, ent(c, "Visit"), ent(c, "Paris"))
    assert m.text.endswith("{ Paris } ")
    back = "".join(c[i] for i in m.char_map if i >= 0)
    assert back == c


def test_encode_pair_points_at_markers(tokenizer):
    c = "Bill Cosby's star on Hollywood Walk of Fame"
    f = encode_pair(tokenizer, c, ent(c, "Bill Cosby"), ent(c, "Hollywood Walk of Fame"))
    toks = tokenizer.convert_ids_to_tokens(f.input_ids)
    assert toks[f.head_index] == "[" and toks[f.tail_index] == "{"
    assert toks[0] == "[CLS]" and toks[-1] == "[SEP]"
    assert f.token_spans[f.head_index + 1] == (0, 4)  # "bill"


def test_long_caption_keeps_both_markers(tokenizer):
    c = "word " * 400 + "Alice met Bob " + "filler " * 400 + "in Paris"
    head = ent(c, "Alice")
    tail = ent(c, "Paris")
    f = encode_pair(tokenizer, c, head, tail, max_length=64)
    toks = tokenizer.convert_ids_to_tokens(f.input_ids)
    assert len(f.input_ids) <= 64
    assert toks[f.head_index] == "[" and toks[f.tail_index] == "{"
    assert toks[f.head_index + 1] == "alice" and toks[f.tail_index + 1] == "paris"


def test_user_spans_are_checked():
    c = "Alice met Bob"
    with pytest.raises(InputError, match="outside the caption"):
        check_entities(c, [Entity("", 5, 40)])
    with pytest.raises(InputError, match="overlap"):
        check_entities(c, [Entity("Alice", 0, 5), Entity("", 2, 7)])
    with pytest.raises(InputError, match="does not match"):
        check_entities(c, [Entity("Bob", 0, 3)])
    assert check_entities(c, [Entity("", 10, 13, "PER")])[0].text == "Bob"
