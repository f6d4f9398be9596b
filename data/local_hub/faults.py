"""Fault injection: rate limits, server errors, slow and truncated answers, drawn reproducibly per request."""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass

from data.local_hub.responses import HubError, Response

logger = logging.getLogger(__name__)

FAULT_KINDS = ("429", "500", "503", "slow", "truncated")
ERROR_KINDS = frozenset({"429", "500", "503"})  # kinds that replace the answer with an error status
_RATE_LIMIT_QUOTA = 500  # the anonymous API quota per 5-minute window, as the Hub announces it
_RATE_LIMIT_WINDOW_S = 300


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultPlan:
    """Which faults to inject, how often, and with which parameters.

    Each request (whose path starts with one of `only_paths`, or any request if empty) gets a fault with
    probability `rate`, its kind drawn uniformly from `kinds`, both from ``random.Random(seed)``.
    Kinds: ``"429"`` (with Retry-After and RateLimit headers), ``"500"``, ``"503"``, ``"slow"`` (sleep
    `slow_s`, then answer) and ``"truncated"`` (JSON cut in half; file bodies cut and connection closed).
    """

    rate: float
    kinds: tuple[str, ...] = FAULT_KINDS
    seed: int = 0
    retry_after_s: int = 0
    slow_s: float = 0.2
    only_paths: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate must be in [0, 1], not {self.rate}")
        unknown = set(self.kinds) - set(FAULT_KINDS)
        if unknown or not self.kinds:
            raise ValueError(f"kinds must be a non-empty subset of {FAULT_KINDS}, got {self.kinds}")
        if self.retry_after_s < 0 or self.slow_s < 0:
            raise ValueError("retry_after_s and slow_s must be >= 0")

    def applies_to(self, path: str) -> bool:
        """Whether requests for `path` (decoded, without query) are subject to this plan."""
        return not self.only_paths or path.startswith(self.only_paths)


@dataclass(frozen=True, slots=True)
class Fault:
    """A fault drawn for one request."""

    kind: str
    plan: FaultPlan

    def error_response(self) -> Response:
        """The answer replacing the normal one for the error kinds (429, 500, 503)."""
        if self.kind == "429":
            wait_s = self.plan.retry_after_s
            headers = {
                "Retry-After": str(wait_s),
                "RateLimit": f'"api";r=0;t={wait_s}',
                "RateLimit-Policy": f'"fixed window";"api";q={_RATE_LIMIT_QUOTA};w={_RATE_LIMIT_WINDOW_S}',
            }
            return HubError(429, "Too Many Requests (injected fault)", headers=headers).to_response()
        return HubError(int(self.kind), f"Injected fault {self.kind}").to_response()


class FaultInjector:
    """Draws faults for incoming requests from the current plan, under a lock so sequences reproduce."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._plan: FaultPlan | None = None
        self._rng = random.Random()

    def set_plan(self, plan: FaultPlan | None) -> None:
        """Start injecting `plan` (reseeding the generator), or stop with None."""
        with self._lock:
            self._plan = plan
            self._rng = random.Random(plan.seed if plan else None)
        logger.debug("fault plan: %s", plan)

    def draw(self, path: str) -> Fault | None:
        """The fault for the next request to `path`, or None."""
        with self._lock:
            plan = self._plan
            if plan is None or not plan.applies_to(path) or self._rng.random() >= plan.rate:
                return None
            return Fault(self._rng.choice(plan.kinds), plan)
