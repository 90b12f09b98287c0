"""Development tools: the local API, the template reader, test helpers. Never deployed."""
