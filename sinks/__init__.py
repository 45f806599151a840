"""EnviroStream sinks."""
