"""Recipes: a recipe's checks run on one image and judged by its limits (no I/O)."""
