"""Failures of the LLM layer. Every one carries a reason a person can act on."""

from __future__ import annotations


class LLMError(RuntimeError):
    """A request that failed for good (after its retries and repairs): `reason` says why."""

    def __init__(self, reason: str, turn=None):
        super().__init__(reason)
        self.reason = reason
        self.turn = turn  # the failed Turn, kept in the transcript too


class TransientError(Exception):
    """Worth another try after a wait: 429, 5xx, connection refused or reset, timeout."""

    def __init__(self, reason: str, retry_after_s: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


class PermanentError(Exception):
    """Another try would get the same answer: 4xx other than 429, a reply that is not a chat completion."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
