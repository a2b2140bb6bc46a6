"""Text and vision backbones (offline packaged defaults, or any Hugging Face id / local path)."""
