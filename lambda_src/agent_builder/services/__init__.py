"""Domain services: what the handlers call. Each takes its repositories and gateways."""
