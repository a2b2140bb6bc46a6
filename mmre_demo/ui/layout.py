"""The Gradio Blocks page. All logic lives in `mmre_demo.ui.callbacks` (plain functions) and all formatting
in `mmre_demo.ui.render`; this module only lays out one component per `Output` and binds each callback
to the outputs it declares (`Status` -> the status line and a toast, `Choices` -> dropdown options)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import gradio as gr

from mmre_demo.annotations import DECISIONS
from mmre_demo.annotations.agreement import AGREEMENT_HEADERS
from mmre_demo.graph.explore import SOURCE_CHOICES, TYPE_CHOICES
from mmre_demo.ui import callbacks as cb
from mmre_demo.ui import reviewing as rv
from mmre_demo.ui.controller import Controller, examples
from mmre_demo.ui.login import LoginMode
from mmre_demo.ui.outputs import Choices, Output, Status, Update
from mmre_demo.ui.render import (
    ALTERNATIVE_HEADERS,
    DECISION_HEADERS,
    ENTITY_COLOURS,
    ENTITY_HEADERS,
    RELATION_HEADERS,
    SUGGESTION_HEADERS,
)
from mmre_demo.ui.render import provenance_html as render_provenance

TITLE = "mmre_demo — multimodal relation extraction"
CSS = """
#status {min-height: 2.5em; padding: 0.4em 0.8em; border-radius: 8px; background: #f4f6fb;
         border-left: 4px solid #6366f1; font-size: 1.02em}
#evidence img {object-fit: contain}
#provenance, #graph-files {max-width: 100%; overflow-wrap: anywhere}
#graph {min-height: 640px}
#graph .js-plotly-plot, #graph .plot-container {width: 100% !important}
@media (max-width: 640px) {
  /* a phone scrolls the drawing sideways inside its box: the names keep the room they were placed in */
  #graph {overflow-x: auto}
  #graph .js-plotly-plot, #graph .plot-container {min-width: 1300px}  /* graph/placement.py Canvas */
}
"""

# callbacks that run the model at the same time, all model events together: requests running together
# share the models' batches (`microbatch`); the rest of a callback (drawing) runs beside them
MODEL_CONCURRENCY = 8
# the images the app shows are sent as JPEG: Gradio's default WebP took 30 ms of CPU per click for the
# two result images, JPEG 1.4 ms (PNG 100 ms); they are pictures and heatmaps, not line art
IMAGE_FORMAT = "jpeg"
MODEL_EVENTS = dict(concurrency_limit=MODEL_CONCURRENCY, concurrency_id="model")

# api_name of every main action (stable: the README and gradio_client use them)
API_NAMES = ("predict", "rerun", "explain", "filter", "clear_graph", "export_graph", "suggest_links",
             "add_suggestion", "refresh_embedding", "annotate", "undo_annotation", "export_annotations", "preview",
             "add_from_image", "load_graph", "explore", "whole_graph", "provenance", "review_accept", "review_reject",
             "review_relabel", "review_skip", "review_undo", "review_next", "review_open", "review_tab_posts",
             "review_folder", "decisions", "open_graph")


def build(controller: Controller | None = None) -> gr.Blocks:
    """The app. `controller` holds the model; by default the shipped weights load in the background."""
    ctl = controller or Controller()
    ex = examples()
    with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
        tab = gr.State(None)
        gr.Markdown(f"## {TITLE}\nUpload an image and its caption (or pick an example). The app finds the entities, "
                    "classifies both directions of every pair and keeps the more probable one, shows where the "
                    "model looked, and grows a knowledge graph "
                    "over your submissions.")
        device_md = gr.Markdown(cb.device_text(ctl), elem_id="device")
        with gr.Row(elem_id="shared-row"):
            # one threshold for both tabs: the relations table, the graph, the status line and the exports
            threshold = gr.Slider(0.0, 1.0, value=ctl.default_threshold(), step=0.05, scale=2, min_width=320,
                                  label="Probability threshold (default: the model's, best end-to-end F1 on "
                                        "validation): the relations table, the graph and the exports",
                                  elem_id="threshold")
            with gr.Column(scale=3, min_width=320):
                status = gr.Markdown("Ready.", elem_id="status")
        with gr.Tabs(elem_id="tabs"):
            with gr.Tab("Extract", id="extract", elem_id="extract-tab") as extract_tab:
                with gr.Row():
                    with gr.Column(scale=2):
                        image_file = gr.File(label="Image (optional: jpg, png, webp, gif, tiff, bmp…)", type="filepath",
                                             elem_id="image-file")
                        preview = gr.Image(label="Image as the model reads it", interactive=False, height=220,
                                           elem_id="preview", buttons=[], format=IMAGE_FORMAT)
                        caption = gr.Textbox(label="Caption", lines=3, max_lines=8, elem_id="caption",
                                             placeholder="e.g. Astronaut Eileen Collins of NASA poses in Houston.")
                        with gr.Row():
                            run_btn = gr.Button("Extract relations", variant="primary", elem_id="run")
                        with gr.Row():
                            show_none = gr.Checkbox(False, label="Show pairs below the threshold (they read as None)",
                                                    elem_id="show-none")
                            read_text = gr.Checkbox(True, label="Read the text in the image (OCR): ground the entities "
                                                                "it names", elem_id="read-text")
                    with gr.Column(scale=3):
                        entities_hl = gr.HighlightedText(label="Entities in the caption", color_map=ENTITY_COLOURS,
                                                         show_legend=True, combine_adjacent=False, elem_id="entities")
                        with gr.Accordion("Edit entities (add a row, clear a row's text to remove it, change its type)",
                                          open=False, elem_id="entity-editor"):
                            entities_df = gr.Dataframe(headers=ENTITY_HEADERS,
                                                       datatype=["str", "str", "number", "number"],
                                                       column_count=4, interactive=True, elem_id="entities-table",
                                                       label="Entities (type: PER, ORG, LOC, MISC; leave start/end "
                                                             "empty to find the text in the caption)")
                            rerun_btn = gr.Button("Re-run with these entities", elem_id="rerun")
                gr.Examples([[e["path"], e["caption"]] for e in ex], inputs=[image_file, caption],
                            label="Examples (public-domain photographs from scikit-image; the last one has no image)",
                            examples_per_page=8)
                relations_df = gr.Dataframe(headers=RELATION_HEADERS, interactive=False, elem_id="relations", wrap=True,
                                            label="Relations: one row per entity pair, in its more probable direction "
                                                  "(click a row for its evidence)",
                                            column_widths=["5%", "19%", "22%", "19%", "9%", "19%", "7%"])
                pair = gr.Dropdown(label="Pair to explain / annotate", choices=[], elem_id="pair",
                                   allow_custom_value=True)
                with gr.Row():
                    with gr.Column(scale=3):
                        gr.Markdown("#### Where the model looked: attention of the pair, the head and the tail "
                                    "over the image")
                        evidence_img = gr.Image(label="Where the model looked", show_label=False, interactive=False,
                                                elem_id="evidence", type="pil", buttons=[], format=IMAGE_FORMAT)
                        evidence_md = gr.Markdown("", elem_id="evidence-text")
                        words = gr.HighlightedText(label="Word weights for this pair (darker = more weight)",
                                                   show_legend=False, combine_adjacent=False, elem_id="words")
                    with gr.Column(scale=2):
                        image_text_img = gr.Image(label="Text read in the image (blue: a line read; pink: a caption "
                                                        "entity found there)", interactive=False, type="pil",
                                                  elem_id="image-text-img", buttons=[], format=IMAGE_FORMAT)
                        image_text_md = gr.Markdown("", elem_id="image-text")
                        also_in_image = gr.CheckboxGroup(
                            [], label="Also in the image: names read there, not in the caption",
                            elem_id="also-in-image")
                        add_image_btn = gr.Button("Add the ticked names to the entities and re-run",
                                                  elem_id="add-from-image", size="sm")
                        concepts = gr.Label(label="Visual concepts recognised in the image", num_top_classes=8,
                                            elem_id="concepts", show_heading=False)
                        with gr.Accordion("Annotator mode: accept / reject / relabel the chosen pair", open=False,
                                          elem_id="annotator"):
                            annotator = gr.Textbox(label="Your name (annotator)", value="", max_lines=1,
                                                   elem_id="annotator-name", interactive=not ctl.login.required,
                                                   placeholder="signed in on the Review tab" if ctl.login.required
                                                   else "")
                            decision = gr.Radio(list(DECISIONS), value="accept", label="Decision", elem_id="decision")
                            new_label = gr.Dropdown([], value=None, label="New relation (for relabel: the relations "
                                                                          "that fit the pair's types)",
                                                    elem_id="new-label", allow_custom_value=True)  # API -> store check
                            with gr.Row():
                                annotate_btn = gr.Button("Save decision", elem_id="annotate")
                                undo_btn = gr.Button("Undo my last decision", elem_id="undo-annotation")
            with gr.Tab("Graph", id="graph", elem_id="graph-tab") as graph_tab:
                gr.Markdown("The tab's knowledge graph (or a loaded corpus graph). Search a node, focus on its "
                            "neighbourhood, filter, and trace an edge to the posts it came from.")
                with gr.Row(equal_height=True):
                    node = gr.Dropdown(label="Search a node (type to filter; most connected first)", choices=[],
                                       filterable=True, allow_custom_value=True, elem_id="node", scale=3)
                    hops = gr.Radio(list(cb.HOPS_CHOICES), value=cb.HOPS_CHOICES[0], label="Focus", elem_id="hops",
                                    scale=2)
                    whole_btn = gr.Button("Back to the whole graph", elem_id="whole-graph", scale=1)
                with gr.Row():
                    relation_filter = gr.Dropdown(cb.RELATION_CHOICES, multiselect=True, value=[], scale=2,
                                                  label="Relations (none chosen: all)", elem_id="relation-filter")
                    type_filter = gr.CheckboxGroup(list(TYPE_CHOICES), label="Entity types (none ticked: all)",
                                                   elem_id="type-filter", scale=1)
                    source_filter = gr.CheckboxGroup(list(SOURCE_CHOICES), label="Sources (none ticked: all)",
                                                     elem_id="source-filter", scale=2)
                graph = gr.Plot(label="Knowledge graph", elem_id="graph")
                with gr.Row():
                    with gr.Column(scale=1, min_width=280):
                        edge = gr.Dropdown(label="Trace an edge of the drawing to its posts", choices=[],
                                           filterable=True, elem_id="edge")
                        trace_btn = gr.Button("Trace the searched node", elem_id="trace-node", size="sm")
                    with gr.Column(scale=2, min_width=280):
                        provenance = gr.HTML(render_provenance(None), elem_id="provenance",
                                             label="Where it came from")
                gr.Markdown("#### Suggested links\nLink prediction on this graph (a knowledge-graph embedding "
                            "trained in the background; only links that fit the relation's entity types). Ranked: "
                            "the embedding's held-out MRR / Hits@10 say how far to trust the ranks.")
                with gr.Row(equal_height=True):
                    k = gr.Slider(1, 10, value=5, step=1, label="How many", elem_id="k", scale=2)
                    suggest_btn = gr.Button("Suggest links for the searched node", elem_id="suggest", scale=1)
                    refresh_btn = gr.Button("Refresh embedding", elem_id="refresh-embedding", scale=1)
                suggestions_df = gr.Dataframe(headers=SUGGESTION_HEADERS, interactive=False, elem_id="suggestions",
                                              label="Suggestions (dashed in the graph)", wrap=True,
                                              column_widths=["8%", "24%", "24%", "24%", "20%"])
                with gr.Row(equal_height=True):
                    suggestion = gr.Dropdown(label="Suggestion to add", choices=[], elem_id="suggestion",
                                             allow_custom_value=True, scale=3)
                    add_btn = gr.Button("Add to graph", elem_id="add-suggestion", scale=1)
                poll = gr.Timer(1.5, active=False)  # fetches the suggestions while the embedding trains
                gr.Markdown("#### Files")
                with gr.Row(equal_height=True):
                    clear_btn = gr.Button("Clear graph", variant="stop", elem_id="clear-graph")
                    export_btn = gr.Button("Export graph", elem_id="export-graph")
                files = gr.File(label="Triples and graph (JSON, CSV, GraphML, RDF, Neo4j)", file_count="multiple",
                                interactive=False, elem_id="graph-files")
                with gr.Accordion("Load graph: open a corpus graph (graph.json / graph.graphml from `mmre extract` "
                                  "or an export)", open=False, elem_id="load-graph-box"):
                    graph_file = gr.File(label="graph.json or graph.graphml", type="filepath",
                                         file_types=[".json", ".graphml", ".xml"], elem_id="graph-file")
                    load_btn = gr.Button("Load graph (replaces this tab's graph)", elem_id="load-graph")

            with gr.Tab("Review", elem_id="review-tab") as review_tab:
                gr.Markdown("### Review queue: a corpus's pairs one at a time, the most uncertain first\n"
                            "Open an `mmre extract` output (its `posts.jsonl`, with the images it names), this tab's "
                            "posts, or a queue someone opened before. Keys (outside a text box): **A** accept, "
                            "**R** reject, **1–9** relabel, **S** skip, **U** undo. Your progress is kept in the "
                            "annotation store: come back any time.")
                with gr.Row():
                    review_name = gr.Textbox(label="Your name (annotator; kept in this browser)", max_lines=1,
                                             elem_id="review-name", interactive=not ctl.login.required, scale=2)
                    if ctl.login.mode is LoginMode.PASSWORD:
                        login_name = gr.Textbox(label="Annotator", max_lines=1, elem_id="login-name", scale=1)
                        login_password = gr.Textbox(label="Password", type="password", max_lines=1,
                                                    elem_id="login-password", scale=1)
                        sign_in_btn = gr.Button("Sign in to annotate", elem_id="sign-in", scale=1)
                    elif ctl.login.mode is LoginMode.HUGGINGFACE:
                        gr.LoginButton(value="Sign in with Hugging Face to annotate", elem_id="hf-login", scale=1)
                with gr.Row():
                    queue_dd = gr.Dropdown([], label="Stored review queues", elem_id="review-queue", scale=2,
                                           allow_custom_value=True)
                    open_queue_btn = gr.Button("Continue this queue", elem_id="open-queue", scale=1)
                    open_tab_posts_btn = gr.Button("Review this tab's posts", elem_id="review-tab-posts", scale=1)
                with gr.Accordion("Open an `mmre extract` output folder", open=False, elem_id="review-upload-box"):
                    review_files = gr.File(label="posts.jsonl (and the images it names)", file_count="multiple",
                                           type="filepath", elem_id="review-files")
                    open_folder_btn = gr.Button("Open as a review queue", elem_id="open-folder")
                with gr.Column(elem_id="review-panel"):
                    review_progress = gr.Markdown("", elem_id="review-progress")
                    with gr.Row():
                        with gr.Column(scale=3):
                            review_item = gr.Markdown("Open a review queue to start.", elem_id="review-item")
                            review_caption = gr.HighlightedText(label="The post (head and tail marked)",
                                                                combine_adjacent=False, show_legend=True,
                                                                elem_id="review-caption")
                            with gr.Row():
                                accept_btn = gr.Button("Accept (A)", variant="primary", elem_id="review-accept")
                                reject_btn = gr.Button("Reject (R)", variant="stop", elem_id="review-reject")
                                skip_btn = gr.Button("Skip (S)", elem_id="review-skip")
                                review_undo_btn = gr.Button("Undo (U)", elem_id="review-undo")
                                next_btn = gr.Button("Next", elem_id="review-next")
                            review_labels = gr.Radio([], value=None, elem_id="review-labels",
                                                     label="Relabel to (only the relations that fit the pair's "
                                                           "types; keys 1–9)")
                            relabel_btn = gr.Button("Relabel to the chosen relation", elem_id="review-relabel")
                            review_alternatives = gr.Dataframe(headers=ALTERNATIVE_HEADERS, interactive=False,
                                                               label="The model's alternatives", elem_id="review-alts")
                        with gr.Column(scale=2):
                            review_image = gr.Image(label="The post's image", interactive=False, type="pil",
                                                    elem_id="review-image", buttons=[], height=260,
                                                    format=IMAGE_FORMAT)
                            review_text = gr.Markdown("", elem_id="review-text")
                            review_evidence = gr.Image(label="Where the model looked for this pair", interactive=False,
                                                       type="pil", elem_id="review-evidence", buttons=[],
                                                       format=IMAGE_FORMAT)
                gr.Markdown("#### Decisions and agreement")
                with gr.Row():
                    everyone = gr.Checkbox(False, label="Show everyone's decisions (default: yours)",
                                           elem_id="everyone")
                    refresh_tables_btn = gr.Button("Refresh the tables", elem_id="refresh-decisions", size="sm")
                    export_ann_btn = gr.Button("Export decisions as MNRE lines", elem_id="export-annotations",
                                               size="sm")
                decisions_df = gr.Dataframe(headers=DECISION_HEADERS, value=[], interactive=False, wrap=True,
                                            label="Standing decisions (newest first; replaced and undone ones are kept "
                                                  "in the store's history)", elem_id="decisions")
                agreement_df = gr.Dataframe(headers=AGREEMENT_HEADERS, value=[], interactive=False, elem_id="agreement",
                                            label="Agreement on the pairs two annotators decided (Cohen's kappa; "
                                                  "per relation: that relation against the rest)")
                annotations_file = gr.File(label="MNRE export", interactive=False, elem_id="annotations-file")

        name_state = gr.BrowserState("", storage_key="mmre_annotator")
        queue_state = gr.BrowserState("", storage_key="mmre_review_queue")
        components: dict[Output, Any] = {
            Output.TAB: tab, Output.STATUS: status, Output.PREVIEW: preview, Output.ENTITIES_HL: entities_hl,
            Output.ENTITIES_DF: entities_df, Output.RELATIONS_DF: relations_df, Output.PAIR: pair,
            Output.EVIDENCE_IMG: evidence_img, Output.EVIDENCE_MD: evidence_md, Output.WORDS: words,
            Output.CONCEPTS: concepts, Output.GRAPH: graph, Output.NODE: node, Output.FILES: files,
            Output.SUGGESTIONS_DF: suggestions_df, Output.SUGGESTION: suggestion, Output.DECISIONS_DF: decisions_df,
            Output.ANNOTATIONS_FILE: annotations_file, Output.IMAGE_TEXT_IMG: image_text_img,
            Output.IMAGE_TEXT_MD: image_text_md, Output.ALSO_IN_IMAGE: also_in_image, Output.CAPTION: caption,
            Output.EDGE: edge, Output.PROVENANCE: provenance, Output.POLL: poll, Output.HOPS: hops,
            Output.RELATION_FILTER: relation_filter, Output.TYPE_FILTER: type_filter,
            Output.SOURCE_FILTER: source_filter,
            Output.NEW_LABEL: new_label, Output.ANNOTATOR_NAME: review_name, Output.REVIEW_QUEUES: queue_dd,
            Output.REVIEW_PROGRESS: review_progress, Output.REVIEW_ITEM: review_item,
            Output.REVIEW_CAPTION: review_caption, Output.REVIEW_IMAGE: review_image,
            Output.REVIEW_EVIDENCE: review_evidence, Output.REVIEW_TEXT: review_text,
            Output.REVIEW_ALTERNATIVES: review_alternatives, Output.REVIEW_LABELS: review_labels,
            Output.AGREEMENT_DF: agreement_df,
        }
        missing = set(Output) - set(components)
        assert not missing, f"outputs without a component: {missing}"

        def bind(fn: Callable[..., Update]) -> tuple[list[Any], Callable[[Update], tuple]]:
            """The components of the outputs `fn` declares, and the converter of its `Update` onto them."""
            names: tuple[Output, ...] = fn.outputs  # type: ignore[attr-defined]

            def convert(result: Update) -> tuple:
                values = []
                for name in names:
                    value = result.get(name, gr.skip())
                    if isinstance(value, Status):
                        if value.is_problem:
                            gr.Warning(value.message)  # a toast as well as the status line
                        value = value.markdown()
                    elif isinstance(value, Choices):
                        value = gr.update(choices=value.choices, value=value.value)
                    elif name is Output.POLL and isinstance(value, bool):
                        value = gr.Timer(active=value)
                    values.append(value)
                return tuple(values)

            return [components[n] for n in names], convert

        main_outs, main_conv = bind(cb.run)

        def do_predict(image, text, thr, none, sess, ocr=True, progress=gr.Progress()):  # noqa: B008 - gradio's idiom
            return main_conv(cb.run(ctl, image, text, thr, none, sess, progress=progress, read_text=ocr))

        def do_rerun(image, text, rows, thr, none, sess, ocr=True, progress=gr.Progress()):  # noqa: B008
            return main_conv(cb.rerun(ctl, image, text, rows, thr, none, sess, progress=progress, read_text=ocr))

        img_outs, img_conv = bind(cb.add_from_image)

        def do_add_from_image(chosen, image, thr, none, sess, ocr=True, progress=gr.Progress()):  # noqa: B008
            return img_conv(cb.add_from_image(ctl, chosen, image, thr, none, sess, progress=progress, read_text=ocr))

        def do_filter(thr, none, sess):
            return main_conv(cb.refilter(ctl, thr, none, sess))

        ev_outs, ev_conv = bind(cb.explain)

        def do_explain(p, sess):
            return ev_conv(cb.explain(ctl, p, sess))

        def on_select(evt: gr.SelectData, sess):
            try:
                number = int((evt.row_value or [None])[0])
            except (TypeError, ValueError, IndexError):
                number = None
            if number is None:
                return gr.skip()
            return gr.update(value=str(number))

        g_outs, g_conv = bind(cb.clear_graph)  # every graph-tab callback shares these outputs
        pv_outs, pv_conv = bind(cb.preview)

        run_btn.click(do_predict, [image_file, caption, threshold, show_none, tab, read_text], main_outs,
                      api_name="predict", **MODEL_EVENTS)
        caption.submit(do_predict, [image_file, caption, threshold, show_none, tab, read_text], main_outs,
                       api_visibility="private", **MODEL_EVENTS)
        rerun_btn.click(do_rerun, [image_file, caption, entities_df, threshold, show_none, tab, read_text],
                        main_outs, api_name="rerun", **MODEL_EVENTS)
        add_image_btn.click(do_add_from_image, [also_in_image, image_file, threshold, show_none, tab, read_text],
                            img_outs, api_name="add_from_image", **MODEL_EVENTS)
        load_btn.click(lambda p, thr, s: g_conv(cb.load_graph(ctl, p, thr, s)), [graph_file, threshold, tab],
                       g_outs, api_name="load_graph")
        # every way the threshold changes (dragging, typing + Enter or Tab in its number box) refilters; only the
        # last of a burst of changes runs
        threshold.change(do_filter, [threshold, show_none, tab], main_outs, api_name="filter",
                         trigger_mode="always_last")
        show_none.input(do_filter, [threshold, show_none, tab], main_outs, api_visibility="private")
        pair.input(do_explain, [pair, tab], ev_outs, api_name="explain")
        relations_df.select(on_select, [tab], pair, api_visibility="private").then(
            do_explain, [pair, tab], ev_outs, api_visibility="private")
        image_file.change(lambda p: pv_conv(cb.preview(ctl, p)), [image_file], pv_outs, api_name="preview",
                          show_progress="minimal")
        clear_btn.click(lambda thr, s: g_conv(cb.clear_graph(ctl, thr, s)), [threshold, tab], g_outs,
                        api_name="clear_graph")
        export_btn.click(lambda thr, s: g_conv(cb.export_graph(ctl, thr, s)), [threshold, tab], g_outs,
                         api_name="export_graph")
        suggest_btn.click(lambda n, kk, thr, s: g_conv(cb.suggest(ctl, n, kk, thr, s)), [node, k, threshold, tab],
                          g_outs, api_name="suggest_links")
        add_btn.click(lambda w, thr, s: g_conv(cb.add_suggestion(ctl, w, thr, s)), [suggestion, threshold, tab],
                      g_outs, api_name="add_suggestion")
        refresh_btn.click(lambda s: g_conv(cb.refresh_embedding(ctl, s)), [tab], g_outs,
                          api_name="refresh_embedding")
        explore_inputs = [node, hops, relation_filter, type_filter, source_filter, threshold, tab]

        def do_explore(n, hp, rel, typ, src, thr, s):
            return g_conv(cb.explore_graph(ctl, n, hp, rel, typ, src, thr, s))

        node.input(do_explore, explore_inputs, g_outs, api_name="explore", trigger_mode="always_last")
        for control in (hops, relation_filter, type_filter, source_filter):
            control.input(do_explore, explore_inputs, g_outs, api_visibility="private", trigger_mode="always_last")
        graph_tab.select(lambda thr, s: g_conv(cb.show_graph(ctl, thr, s)), [threshold, tab], g_outs,
                         api_name="open_graph")
        whole_btn.click(lambda thr, s: g_conv(cb.whole_graph(ctl, thr, s)), [threshold, tab], g_outs,
                        api_name="whole_graph")
        edge.input(lambda w, s: g_conv(cb.trace(ctl, w, s)), [edge, tab], g_outs, api_name="provenance")
        trace_btn.click(lambda w, s: g_conv(cb.trace(ctl, w, s)), [node, tab], g_outs, api_visibility="private")
        poll.tick(lambda thr, s: g_conv(cb.poll_suggestions(ctl, thr, s)), [threshold, tab], g_outs,
                  api_visibility="private", show_progress="hidden")
        a_outs, a_conv = bind(cb.annotate)  # the annotator's outputs (GRAPH_PANEL): its API is unchanged

        def oauth_name(profile: gr.OAuthProfile | None) -> str | None:
            return getattr(profile, "username", None) if profile is not None else None

        def do_annotate(p, d, nl, who, thr, s, profile: gr.OAuthProfile | None = None):
            return a_conv(cb.annotate(ctl, p, d, nl, who, thr, s, oauth_name(profile)))

        def do_undo_annotation(who, thr, s, profile: gr.OAuthProfile | None = None):
            return a_conv(cb.undo_annotation(ctl, who, thr, s, oauth_name(profile)))

        annotate_btn.click(do_annotate, [pair, decision, new_label, annotator, threshold, tab], a_outs,
                           api_name="annotate")
        undo_btn.click(do_undo_annotation, [annotator, threshold, tab], a_outs, api_name="undo_annotation")
        export_ann_btn.click(lambda s: a_conv(cb.export_annotations(ctl, s)), [tab], a_outs,
                             api_name="export_annotations")

        rv_outs, rv_conv = bind(rv.decide)  # every Review-tab callback shares these outputs

        def do_decide(kind, label, who, s, profile: gr.OAuthProfile | None = None):
            return rv_conv(rv.decide(ctl, kind, label, who, s, oauth_name(profile)))

        def do_skip(who, s, profile: gr.OAuthProfile | None = None):
            return rv_conv(rv.skip(ctl, who, s, oauth_name(profile)))

        def do_review_undo(who, s, profile: gr.OAuthProfile | None = None):
            return rv_conv(rv.undo(ctl, who, s, oauth_name(profile)))

        def do_next(who, s, profile: gr.OAuthProfile | None = None):
            return rv_conv(rv.next_item(ctl, who, s, oauth_name(profile)))

        def do_open_queue(q, who, s, profile: gr.OAuthProfile | None = None):
            return rv_conv(rv.open_queue(ctl, q, who, s, oauth_name(profile)))

        def do_open_tab_posts(who, s, profile: gr.OAuthProfile | None = None):
            return rv_conv(rv.open_tab_posts(ctl, who, s, oauth_name(profile)))

        def do_open_folder(files, who, s, progress=gr.Progress(), profile: gr.OAuthProfile | None = None):  # noqa: B008
            return rv_conv(rv.open_folder(ctl, files, who, s, progress=progress, oauth_name=oauth_name(profile)))

        def do_refresh(who, all_, s, profile: gr.OAuthProfile | None = None):
            return rv_conv(rv.refresh(ctl, who, all_, s, oauth_name(profile)))

        def do_accept(who, s, profile: gr.OAuthProfile | None = None):
            return do_decide("accept", None, who, s, profile)

        def do_reject(who, s, profile: gr.OAuthProfile | None = None):
            return do_decide("reject", None, who, s, profile)

        def do_relabel(label, who, s, profile: gr.OAuthProfile | None = None):
            return do_decide("relabel", label, who, s, profile)

        accept_btn.click(do_accept, [review_name, tab], rv_outs, api_name="review_accept", **MODEL_EVENTS)
        reject_btn.click(do_reject, [review_name, tab], rv_outs, api_name="review_reject", **MODEL_EVENTS)
        relabel_btn.click(do_relabel, [review_labels, review_name, tab], rv_outs, api_name="review_relabel",
                          **MODEL_EVENTS)
        skip_btn.click(do_skip, [review_name, tab], rv_outs, api_name="review_skip", **MODEL_EVENTS)
        review_undo_btn.click(do_review_undo, [review_name, tab], rv_outs, api_name="review_undo", **MODEL_EVENTS)
        next_btn.click(do_next, [review_name, tab], rv_outs, api_name="review_next", **MODEL_EVENTS)
        open_queue_btn.click(do_open_queue, [queue_dd, review_name, tab], rv_outs, api_name="review_open",
                             **MODEL_EVENTS)
        open_tab_posts_btn.click(do_open_tab_posts, [review_name, tab], rv_outs, api_name="review_tab_posts",
                               **MODEL_EVENTS)
        open_folder_btn.click(do_open_folder, [review_files, review_name, tab], rv_outs,
                              api_name="review_folder", **MODEL_EVENTS)
        refresh_tables_btn.click(do_refresh, [review_name, everyone, tab], rv_outs, api_name="decisions")
        everyone.input(do_refresh, [review_name, everyone, tab], rv_outs, api_visibility="private")
        if ctl.login.mode is LoginMode.PASSWORD:
            sign_in_btn.click(lambda n, pw, s: rv_conv(rv.sign_in(ctl, n, pw, s)),
                              [login_name, login_password, tab], rv_outs, api_name="sign_in")
        # one name in both places, remembered by the browser (a login's name replaces it)
        review_name.change(lambda v: (v, v), review_name, [annotator, name_state], api_visibility="private")
        annotator.input(lambda v: (v, v), annotator, [review_name, name_state], api_visibility="private")

        def restore(name, queue, s):
            """A new visit: the browser's annotator name, and the queue it had open, where it stopped
            (nothing is touched when the browser remembers no name: a name typed meanwhile stays)."""
            if ctl.login.required or not name:
                return tuple(gr.skip() for _ in rv_outs)
            known = bool(queue) and any(q.id == queue for q in ctl.queues.list())
            update = rv.open_queue(ctl, queue, name, s) if known else rv.refresh(ctl, name, False, s)
            return rv_conv({**update, Output.ANNOTATOR_NAME: name})

        def list_queues(chosen):
            listed = rv.queue_choices(ctl, chosen or None)
            return gr.update(choices=listed.choices, value=listed.value)

        demo.load(restore, [name_state, queue_state, tab], rv_outs, api_visibility="private")
        review_tab.select(list_queues, queue_dd, queue_dd, api_visibility="private")
        for other_tab in (extract_tab, review_tab):  # the graph is drawn only while its tab is open
            other_tab.select(lambda s: cb.leave_graph(ctl, s)[Output.TAB], tab, tab, api_visibility="private",
                             queue=False)
        queue_dd.change(lambda q: q or "", queue_dd, queue_state, api_visibility="private")  # the open queue
        demo.load(lambda: cb.device_text(ctl), None, device_md, api_visibility="private")
    demo.controller = ctl  # for tests and benchmarks
    return demo


REVIEW_KEYS_JS = """
<script>
document.addEventListener("keydown", (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey || e.repeat) return;
  const t = e.target;
  const typing = t && ((t.tagName === "INPUT" && !["radio", "checkbox", "button"].includes(t.type))
                       || t.tagName === "TEXTAREA" || t.isContentEditable);
  const panel = document.getElementById("review-panel");
  if (typing || !panel || panel.offsetParent === null) return;  // typing, or the Review tab is not shown
  const click = (id) => { const b = document.getElementById(id); if (b) { b.click(); e.preventDefault(); } };
  const k = e.key.toLowerCase();
  const buttons = {a: "review-accept", r: "review-reject", s: "review-skip", u: "review-undo"};
  if (buttons[k]) { click(buttons[k]); return; }
  if (/^[1-9]$/.test(k)) {
    const option = document.querySelectorAll("#review-labels input[type=radio]")[Number(k) - 1];
    if (option) { option.click(); e.preventDefault(); setTimeout(() => click("review-relabel"), 200); }
  }
});
</script>
"""


def launch_kwargs() -> dict:
    """launch() arguments shared by app.py and the tests (Gradio 6: theme/css go to launch)."""
    exports = os.environ.get("MMRE_EXPORT_DIR")  # outside Gradio's temp folder: its files must be allowed
    return dict(theme=gr.themes.Soft(), css=CSS, head=REVIEW_KEYS_JS, footer_links=["api", "gradio"],
                max_file_size="50mb",
                show_error=False, allowed_paths=[exports] if exports else None)
