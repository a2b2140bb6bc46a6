"""Readers, label schema and safe image loading. Nothing here imports the model."""
