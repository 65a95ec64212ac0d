"""The HTTP API (FastAPI): ``create_app(ws)``; served by ``soloist up``."""
