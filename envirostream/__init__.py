"""EnviroStream's command line: the top floor, which wires every other package together.

The ground floor (settings, errors, metrics, shared record types) is the package ``core``.
"""

__all__: list[str] = []
__version__ = "0.1.0"
