"""EnviroStream: telemetry of sensor fleets turned into aggregates, anomalies and alerts."""

from envirostream.errors import ConfigurationError, EnviroStreamError
from envirostream.settings import Settings, load_settings

__all__ = ["ConfigurationError", "EnviroStreamError", "Settings", "load_settings"]
__version__ = "0.1.0"
