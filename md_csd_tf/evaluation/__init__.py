"""Evaluation: metrics, scoring a model on a manifest, and the results tables (markdown/CSV)."""
