"""Thin command-line layer (`jscec`) and benchmark scripts."""
