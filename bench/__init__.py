"""EnviroStream bench."""
