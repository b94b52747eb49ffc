"""Benchmarks for Topdown; run them with ``make bench`` (see README.md in this folder)."""
