"""Developer tools for edged (benchmarks). Not part of the installed package."""
