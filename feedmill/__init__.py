"""feedmill's composition root: config loading, the CLI and the service wiring."""
