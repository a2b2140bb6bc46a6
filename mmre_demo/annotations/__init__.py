"""Annotators' work: decisions on predicted triples (`store`), the review queue over a corpus (`review`),
agreement between annotators (`agreement`) and the exchange formats (`formats`)."""

from mmre_demo.annotations.store import (
    ANONYMOUS,
    DECISIONS,
    DEFAULT_DB,
    AnnotationStore,
    Candidate,
    Decision,
    DecisionKind,
    Undo,
    clean_annotator,
    default_db_path,
    final_relation,
    item_key,
    tokenize_for_mnre,
)

__all__ = ["ANONYMOUS", "DECISIONS", "DEFAULT_DB", "AnnotationStore", "Candidate", "Decision", "DecisionKind", "Undo",
           "clean_annotator", "default_db_path", "final_relation", "item_key", "tokenize_for_mnre"]
