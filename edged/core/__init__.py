"""Core domain types: errors, frames, results, limits. Imports nothing else of edged."""
