"""Training of the project's models on curated data (each model's architecture lives with its metric)."""
