"""EnviroStream infra."""
