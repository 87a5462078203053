"""Foundation of the renewal prediction service: settings, errors, data contract, simulator, CLI."""
