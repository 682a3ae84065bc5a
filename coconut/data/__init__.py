"""Data: record formats, generators, graphs, tokenisation, the curriculum, the collator and scoring (no Lightning)."""
