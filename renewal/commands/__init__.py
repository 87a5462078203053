"""One module per ``renewal`` subcommand, each with ``register(app)``."""
