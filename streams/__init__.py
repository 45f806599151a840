"""EnviroStream streams: the Faust worker (``app``, ``run``) and its stages, one per module
(docs/design.md, "The worker process")."""

__all__: list[str] = []
