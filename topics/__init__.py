"""EnviroStream topics."""
