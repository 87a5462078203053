"""Storage of the scoring service: SQLAlchemy 2 models, engines and repositories."""
