"""Identity similarity (CSIM): backbones, the fixed protocol, and the per-video evaluation function."""

from eval.identity.csim import PROTOCOL, IdentityResult, aggregate, protocol
from eval.identity.evaluate import evaluate_identity

__all__ = ["PROTOCOL", "IdentityResult", "aggregate", "evaluate_identity", "protocol"]
