"""The page: the shared row (the device, the one threshold, the status line) and the tabs, each built
and wired by its own module (`extract`, `graph`, `review`), which speak to the page only through the
contract of `mmre_demo.ui.outputs` (one component per `Output`, each callback bound to the outputs it
declares)."""

from __future__ import annotations

import os

import gradio as gr

from mmre_demo.ui import extract, graph, review
from mmre_demo.ui.controller import Controller, examples
from mmre_demo.ui.outputs import Output
from mmre_demo.ui.page import Page
from mmre_demo.ui.render import device_markdown

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

# api_name of every main action (stable: the README and gradio_client use them)
API_NAMES = ("predict", "rerun", "explain", "filter", "clear_graph", "export_graph", "suggest_links",
             "add_suggestion", "refresh_embedding", "annotate", "undo_annotation", "export_annotations", "preview",
             "add_from_image", "load_graph", "explore", "whole_graph", "provenance", "review_accept", "review_reject",
             "review_relabel", "review_skip", "review_undo", "review_next", "review_open", "review_tab_posts",
             "review_folder", "decisions", "open_graph")


def device_text(ctl: Controller) -> str:
    return device_markdown(ctl.device(), os.environ.get("MMRE_DEVICE"), ctl.engine())


def build(controller: Controller | None = None) -> gr.Blocks:
    """The app. `controller` holds the model; by default the shipped weights load in the background."""
    ctl = controller or Controller()
    with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
        tab = gr.State(None)
        gr.Markdown(f"## {TITLE}\nUpload an image and its caption (or pick an example). The app finds the entities, "
                    "classifies both directions of every pair and keeps the more probable one, shows where the "
                    "model looked, and grows a knowledge graph "
                    "over your submissions.")
        device_md = gr.Markdown(device_text(ctl), elem_id="device")
        with gr.Row(elem_id="shared-row"):
            # one threshold for both tabs: the relations table, the graph, the status line and the exports
            threshold = gr.Slider(0.0, 1.0, value=ctl.default_threshold(), step=0.05, scale=2, min_width=320,
                                  label="Probability threshold (default: the model's own, chosen for end-to-end "
                                        "F1): the relations table, the graph and the exports",
                                  elem_id="threshold")
            with gr.Column(scale=3, min_width=320):
                status = gr.Markdown("Ready.", elem_id="status")
        page = Page(ctl, tab, threshold, {Output.TAB: tab, Output.STATUS: status})
        with gr.Tabs(elem_id="tabs"):
            extract_tab = extract.build_extract_tab(page, examples())
            graph_tab = graph.build_graph_tab(page)
            review_tab = review.build_review_tab(page)
        page.check()
        extract.wire_extract_tab(page, extract_tab)
        graph.wire_graph_tab(page, graph_tab)
        extract.wire_annotator(page, extract_tab)
        review.wire_review_tab(page, review_tab)
        review.wire_returning_annotator(page, review_tab, extract_tab.annotator, demo)
        for other in (extract_tab, review_tab):  # the graph is drawn only while its tab is open
            other.tab.select(lambda s: graph.leave_graph(ctl, s)[Output.TAB], tab, tab, api_visibility="private",
                             queue=False)
        demo.load(lambda: device_text(ctl), None, device_md, api_visibility="private")
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
