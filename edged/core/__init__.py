"""Core domain types: errors, frames, regions, results, limits. Imports nothing else of edged."""
