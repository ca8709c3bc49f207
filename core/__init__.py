"""The core: settings, errors, messages, the database, cache, hub and the other
adapters every layer above builds on. It imports nothing of the project outside it."""
