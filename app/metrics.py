"""Prometheus metrics, kept in a registry per application (no global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "shop_http_requests",
            "HTTP requests answered, by route name, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "shop_http_request_duration_seconds",
            "Time to answer an HTTP request, by route name.",
            ["route"],
            registry=self.registry,
        )
        self.mail_sent = Counter(
            "shop_mail_sent", "Mails handed to the mail backend.", registry=self.registry
        )
        self.mail_failed = Counter(
            "shop_mail_failures",
            "Mail sends that failed and were re-queued.",
            registry=self.registry,
        )

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route=route, method=method, status=str(status)).inc()
        self.latency.labels(route=route).observe(seconds)
