"""Evidence: why the model gave a pair its label.

- `evidence`: the model's attention -> per-pair image heatmaps and caption word weights (numpy);
- `overlay`: heatmaps drawn over the image, side by side with a colour bar (PIL + a matplotlib colormap).

The model itself returns the raw attention (`RelationOutput.entity_attention`, `.token_attention`).
Nothing is imported here: `overlay` stays free of torch for the app's rendering.
"""
