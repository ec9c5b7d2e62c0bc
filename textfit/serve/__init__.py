"""`textfit serve OUTPUT_DIR`: a FastAPI service in front of a saved classifier (see app.py)."""

from textfit.serve.app import Limits, create_app

__all__ = ["Limits", "create_app"]
