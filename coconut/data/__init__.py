"""Data: record formats, generators, tokenisation and the collator."""
