"""Pixels: pixel formats and unpacking, image files, rendering. Imports only edged.core."""
