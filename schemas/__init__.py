"""EnviroStream schemas."""
