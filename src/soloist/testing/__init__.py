"""Helpers for Soloist's tests and benchmarks (not used by the engine at run time)."""
