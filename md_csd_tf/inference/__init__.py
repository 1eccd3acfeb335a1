"""Scoring saved models on videos and images, export for serving, explanation figures."""
