"""The ground floor: settings, errors, metrics and shared record types.

Nothing here imports any other package of the project; every other floor may import it.
"""

from core.errors import ConfigurationError, EnviroStreamError
from core.records import Source
from core.settings import Settings, load_settings

__all__ = ["ConfigurationError", "EnviroStreamError", "Settings", "Source", "load_settings"]
