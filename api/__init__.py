"""The operator's HTTP API: per-tenant keys, devices, series, anomalies, alerts, feedback.

``create_app(settings)`` builds the FastAPI app; ``envirostream api`` serves it (docs/api.md).
"""

from api.app import EXTENSIONS, create_app
from api.auth import Principal, require

__all__ = ["EXTENSIONS", "Principal", "create_app", "require"]
