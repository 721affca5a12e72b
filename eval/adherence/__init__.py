"""Prompt adherence: instructions become checkable assertions, checked by measurement or a VLM judge."""
