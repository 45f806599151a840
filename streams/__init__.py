"""EnviroStream streams."""
