"""EnviroStream producers."""
