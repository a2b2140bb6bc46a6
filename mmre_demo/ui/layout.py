"""The Gradio Blocks page. All logic lives in `mmre_demo.ui.callbacks` (plain functions) and all formatting
in `mmre_demo.ui.render`; this module only lays out one component per `Output` and binds each callback
to the outputs it declares (`Status` -> the status line and a toast, `Choices` -> dropdown options)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import gradio as gr

from mmre_demo.annotations import DECISIONS
from mmre_demo.graph.explore import SOURCE_CHOICES, TYPE_CHOICES
from mmre_demo.ui import callbacks as cb
from mmre_demo.ui.controller import Controller, examples
from mmre_demo.ui.outputs import Choices, Output, Status, Update
from mmre_demo.ui.render import DECISION_HEADERS, ENTITY_COLOURS, ENTITY_HEADERS, RELATION_HEADERS, SUGGESTION_HEADERS
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
MODEL_EVENTS = dict(concurrency_limit=MODEL_CONCURRENCY, concurrency_id="model")

# api_name of every main action (stable: the README and gradio_client use them)
API_NAMES = ("predict", "rerun", "explain", "filter", "clear_graph", "export_graph", "suggest_links",
             "add_suggestion", "refresh_embedding", "annotate", "export_annotations", "preview", "add_from_image",
             "load_graph", "explore", "whole_graph", "provenance")


def build(controller: Controller | None = None) -> gr.Blocks:
    """The app. `controller` holds the model; by default the shipped weights load in the background."""
    ctl = controller or Controller()
    ex = examples()
    with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
        session = gr.State(None)
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
            with gr.Tab("Extract", id="extract", elem_id="extract-tab"):
                with gr.Row():
                    with gr.Column(scale=2):
                        image_file = gr.File(label="Image (optional: jpg, png, webp, gif, tiff, bmp…)", type="filepath",
                                             elem_id="image-file")
                        preview = gr.Image(label="Image as the model reads it", interactive=False, height=220,
                                           elem_id="preview", buttons=[])
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
                                                elem_id="evidence", type="pil", buttons=[])
                        evidence_md = gr.Markdown("", elem_id="evidence-text")
                        words = gr.HighlightedText(label="Word weights for this pair (darker = more weight)",
                                                   show_legend=False, combine_adjacent=False, elem_id="words")
                    with gr.Column(scale=2):
                        image_text_img = gr.Image(label="Text read in the image (blue: a line read; pink: a caption "
                                                        "entity found there)", interactive=False, type="pil",
                                                  elem_id="image-text-img", buttons=[])
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
                            annotator = gr.Textbox(label="Your name", value="", max_lines=1, elem_id="annotator-name")
                            decision = gr.Radio(list(DECISIONS), value="accept", label="Decision", elem_id="decision")
                            new_label = gr.Dropdown(cb.RELATION_CHOICES, label="New relation (for relabel)",
                                                    elem_id="new-label")
                            annotate_btn = gr.Button("Save decision", elem_id="annotate")
                            decisions_df = gr.Dataframe(headers=DECISION_HEADERS, value=ctl.annotations.rows(),
                                                        interactive=False,
                                                        label="Stored decisions (newest first)", elem_id="decisions")
                            export_ann_btn = gr.Button("Export decisions as MNRE lines", elem_id="export-annotations")
                            annotations_file = gr.File(label="MNRE export", interactive=False,
                                                       elem_id="annotations-file")
            with gr.Tab("Knowledge graph", id="graph", elem_id="graph-tab") as graph_tab:
                gr.Markdown("The session's knowledge graph (or a loaded corpus graph). Search a node, focus on its "
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
                files = gr.File(label="Triples and graph (JSON, CSV, GraphML)", file_count="multiple",
                                interactive=False, elem_id="graph-files")
                with gr.Accordion("Load graph: open a corpus graph (graph.json / graph.graphml from `mmre extract` "
                                  "or an export)", open=False, elem_id="load-graph-box"):
                    graph_file = gr.File(label="graph.json or graph.graphml", type="filepath",
                                         file_types=[".json", ".graphml", ".xml"], elem_id="graph-file")
                    load_btn = gr.Button("Load graph (replaces this session's graph)", elem_id="load-graph")

        components: dict[Output, Any] = {
            Output.SESSION: session, Output.STATUS: status, Output.PREVIEW: preview, Output.ENTITIES_HL: entities_hl,
            Output.ENTITIES_DF: entities_df, Output.RELATIONS_DF: relations_df, Output.PAIR: pair,
            Output.EVIDENCE_IMG: evidence_img, Output.EVIDENCE_MD: evidence_md, Output.WORDS: words,
            Output.CONCEPTS: concepts, Output.GRAPH: graph, Output.NODE: node, Output.FILES: files,
            Output.SUGGESTIONS_DF: suggestions_df, Output.SUGGESTION: suggestion, Output.DECISIONS_DF: decisions_df,
            Output.ANNOTATIONS_FILE: annotations_file, Output.IMAGE_TEXT_IMG: image_text_img,
            Output.IMAGE_TEXT_MD: image_text_md, Output.ALSO_IN_IMAGE: also_in_image, Output.CAPTION: caption,
            Output.EDGE: edge, Output.PROVENANCE: provenance, Output.POLL: poll, Output.HOPS: hops,
            Output.RELATION_FILTER: relation_filter, Output.TYPE_FILTER: type_filter,
            Output.SOURCE_FILTER: source_filter,
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

        run_btn.click(do_predict, [image_file, caption, threshold, show_none, session, read_text], main_outs,
                      api_name="predict", **MODEL_EVENTS)
        caption.submit(do_predict, [image_file, caption, threshold, show_none, session, read_text], main_outs,
                       api_visibility="private", **MODEL_EVENTS)
        rerun_btn.click(do_rerun, [image_file, caption, entities_df, threshold, show_none, session, read_text],
                        main_outs, api_name="rerun", **MODEL_EVENTS)
        add_image_btn.click(do_add_from_image, [also_in_image, image_file, threshold, show_none, session, read_text],
                            img_outs, api_name="add_from_image", **MODEL_EVENTS)
        load_btn.click(lambda p, thr, s: g_conv(cb.load_graph(ctl, p, thr, s)), [graph_file, threshold, session],
                       g_outs, api_name="load_graph")
        # every way the threshold changes (dragging, typing + Enter or Tab in its number box) refilters; only the
        # last of a burst of changes runs
        threshold.change(do_filter, [threshold, show_none, session], main_outs, api_name="filter",
                         trigger_mode="always_last")
        show_none.input(do_filter, [threshold, show_none, session], main_outs, api_visibility="private")
        pair.input(do_explain, [pair, session], ev_outs, api_name="explain")
        relations_df.select(on_select, [session], pair, api_visibility="private").then(
            do_explain, [pair, session], ev_outs, api_visibility="private")
        image_file.change(lambda p: pv_conv(cb.preview(ctl, p)), [image_file], pv_outs, api_name="preview",
                          show_progress="minimal")
        clear_btn.click(lambda thr, s: g_conv(cb.clear_graph(ctl, thr, s)), [threshold, session], g_outs,
                        api_name="clear_graph")
        export_btn.click(lambda thr, s: g_conv(cb.export_graph(ctl, thr, s)), [threshold, session], g_outs,
                         api_name="export_graph")
        suggest_btn.click(lambda n, kk, thr, s: g_conv(cb.suggest(ctl, n, kk, thr, s)), [node, k, threshold, session],
                          g_outs, api_name="suggest_links")
        add_btn.click(lambda w, thr, s: g_conv(cb.add_suggestion(ctl, w, thr, s)), [suggestion, threshold, session],
                      g_outs, api_name="add_suggestion")
        refresh_btn.click(lambda s: g_conv(cb.refresh_embedding(ctl, s)), [session], g_outs,
                          api_name="refresh_embedding")
        explore_inputs = [node, hops, relation_filter, type_filter, source_filter, threshold, session]

        def do_explore(n, hp, rel, typ, src, thr, s):
            return g_conv(cb.explore_graph(ctl, n, hp, rel, typ, src, thr, s))

        node.input(do_explore, explore_inputs, g_outs, api_name="explore", trigger_mode="always_last")
        for control in (hops, relation_filter, type_filter, source_filter):
            control.input(do_explore, explore_inputs, g_outs, api_visibility="private", trigger_mode="always_last")
        graph_tab.select(lambda thr, s: g_conv(cb.show_graph(ctl, thr, s)), [threshold, session], g_outs,
                         api_visibility="private")
        whole_btn.click(lambda thr, s: g_conv(cb.whole_graph(ctl, thr, s)), [threshold, session], g_outs,
                        api_name="whole_graph")
        edge.input(lambda w, s: g_conv(cb.trace(ctl, w, s)), [edge, session], g_outs, api_name="provenance")
        trace_btn.click(lambda w, s: g_conv(cb.trace(ctl, w, s)), [node, session], g_outs, api_visibility="private")
        poll.tick(lambda thr, s: g_conv(cb.poll_suggestions(ctl, thr, s)), [threshold, session], g_outs,
                  api_visibility="private", show_progress="hidden")
        a_outs, a_conv = bind(cb.annotate)  # the annotator's outputs (GRAPH_PANEL): its API is unchanged
        annotate_btn.click(lambda p, d, nl, who, thr, s: a_conv(cb.annotate(ctl, p, d, nl, who, thr, s)),
                           [pair, decision, new_label, annotator, threshold, session], a_outs, api_name="annotate")
        export_ann_btn.click(lambda s: a_conv(cb.export_annotations(ctl, s)), [session], a_outs,
                             api_name="export_annotations")
        demo.load(lambda: cb.device_text(ctl), None, device_md, api_visibility="private")
    demo.controller = ctl  # for tests and benchmarks
    return demo


def launch_kwargs() -> dict:
    """launch() arguments shared by app.py and the tests (Gradio 6: theme/css go to launch)."""
    exports = os.environ.get("MMRE_EXPORT_DIR")  # outside Gradio's temp folder: its files must be allowed
    return dict(theme=gr.themes.Soft(), css=CSS, footer_links=["api", "gradio"], max_file_size="50mb",
                show_error=False, allowed_paths=[exports] if exports else None)
