"""Prompt adherence: instructions become checkable assertions, checked by measurement or a VLM judge."""

from eval.adherence.assertions import Assertion, load_case, parse_instruction
from eval.adherence.score import AdherenceResult, aggregate, evaluate_adherence, write_assertions_parquet

__all__ = ["AdherenceResult", "Assertion", "aggregate", "evaluate_adherence", "load_case", "parse_instruction",
           "write_assertions_parquet"]
