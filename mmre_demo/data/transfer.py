"""The transfer set: Twitter-2015/2017 tweets with at least two entities, captions for a later distillation run.

Why: a student can learn the teachers' distributions on unlabelled captions too, and the Twitter NER tweets
are of MNRE's kind (tweets with images) with gold entities. Only the train and valid files are read: the
test splits are held out for good (`../shared/data/README.md`), so a file whose name says "test" is refused
before anything is read. A tweet needs two entities with different names to have a pair; others are skipped.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from mmre_demo.data.conll import bio_spans, read_conll, twitter_ner_files
from mmre_demo.data.labels import NONE_LABEL
from mmre_demo.data.mnre import MnreExample, tokens_to_caption
from mmre_demo.data.names import normalise_name
from mmre_demo.data.schema import Entity, InputError

TRANSFER_SPLITS = ("train", "valid")  # never "test"
MIN_ENTITIES = 2  # distinct entity names a caption needs to form a pair


@dataclass(frozen=True)
class TransferCaption:
    """One tweet as a caption (tokens joined by single spaces) with its gold entities (typed spans)."""

    caption: str
    tokens: tuple[str, ...]
    entities: tuple[Entity, ...]
    img_id: str | None
    source: str  # "twitter2015/train.txt"
    line_no: int


def refuse_test_files(paths: Sequence[str | Path]) -> list[Path]:
    """The paths, or InputError naming the first whose file name says test (a held-out split)."""
    out = [Path(p) for p in paths]
    for path in out:
        if "test" in path.name.lower():
            raise InputError(f"{path}: a test split is held out and never read (transfer uses train and valid only)")
    return out


def transfer_files(root: str | Path) -> list[Path]:
    """Both years' train and valid files under `root` (= `shared_data_dir()`)."""
    return [path for split in TRANSFER_SPLITS for path in twitter_ner_files(root, split)]


def transfer_captions(paths: Sequence[str | Path], min_entities: int = MIN_ENTITIES) -> Iterator[TransferCaption]:
    """The tweets of `paths` with at least `min_entities` distinct entity names, in file order. Every path is
    checked (`refuse_test_files`) before any is read."""
    checked = refuse_test_files(paths)
    return _captions(checked, min_entities)


def _captions(paths: list[Path], min_entities: int) -> Iterator[TransferCaption]:
    for path in paths:
        source = f"{path.parent.name}/{path.name}"
        for sentence in read_conll(path):
            caption, starts = tokens_to_caption(list(sentence.tokens))
            entities = []
            for a, b, etype in bio_spans(sentence.tags):
                start, end = starts[a], starts[b - 1] + len(sentence.tokens[b - 1])
                entities.append(Entity(caption[start:end], start, end, etype))
            if len({name for e in entities if (name := normalise_name(e.text))}) >= min_entities:
                yield TransferCaption(caption, sentence.tokens, tuple(entities), sentence.img_id, source,
                                      sentence.line_no)


def transfer_pairs(captions: Iterator[TransferCaption] | Sequence[TransferCaption],
                   max_pairs: int = 30) -> list[MnreExample]:
    """Every ordered pair of a caption's entities with different names (at most `max_pairs` per caption, the
    product's cap), as examples a teacher scores. Their relation is a placeholder (`None`): the transfer set
    has no relation labels, so training reads only the teacher's distribution on them, never this label. No
    image: the Twitter images are not MNRE's and are not here."""
    out: list[MnreExample] = []
    for c in captions:
        pairs = [(h, t) for h in c.entities for t in c.entities
                 if normalise_name(h.text) != normalise_name(t.text)]
        out += [MnreExample(c.caption, h, t, NONE_LABEL, None, c.tokens, c.line_no) for h, t in pairs[:max_pairs]]
    return out
