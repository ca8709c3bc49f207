"""Prometheus metrics, kept in a registry per application (no global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


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

        self.sockets_open = Gauge(
            "shop_ws_open_sockets",
            "Websockets open, by channel.",
            ["channel"],
            registry=self.registry,
        )
        self.socket_messages = Counter(
            "shop_ws_messages_sent",
            "Websocket messages sent, by channel.",
            ["channel"],
            registry=self.registry,
        )
        self.sockets_dropped_slow = Counter(
            "shop_ws_slow_consumers_dropped",
            "Websockets closed with 1013 because their queue overflowed, by channel.",
            ["channel"],
            registry=self.registry,
        )
        self.redis_failures = Counter(
            "shop_redis_failures",
            "Redis calls that failed, or were skipped while Redis was away, by what Redis "
            "was used for.",
            ["use"],
            registry=self.registry,
        )
        self.task_runs = Counter(
            "shop_task_runs",
            "Periodic task runs that finished, failed ones included, by task.",
            ["task"],
            registry=self.registry,
        )
        self.task_failures = Counter(
            "shop_task_failures",
            "Periodic task runs that failed, by task.",
            ["task"],
            registry=self.registry,
        )
        self.task_last_success = Gauge(
            "shop_task_last_success_timestamp_seconds",
            "When a run of the task last succeeded (unix time), by task.",
            ["task"],
            registry=self.registry,
        )

        # labels() looks its child up anew on every call: each request's are kept here.
        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def expect_tasks(self, names: list[str]) -> None:
        """Show each task's counters at 0 before its first run, so that a rate over them
        starts with the process rather than with the first failure."""
        for name in names:
            self.task_runs.labels(task=name)
            self.task_failures.labels(task=name)

    def observe_task(self, name: str, *, succeeded: bool) -> None:
        """Count a finished run of task `name`; a success also sets its last success time."""
        self.task_runs.labels(task=name).inc()
        if succeeded:
            self.task_last_success.labels(task=name).set_to_current_time()
        else:
            self.task_failures.labels(task=name).inc()

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._request_children.get(key)
        if children is None:
            children = (
                self.requests.labels(route=route, method=method, status=str(status)),
                self.latency.labels(route=route),
            )
            self._request_children[key] = children
        count, latency = children
        count.inc()
        latency.observe(seconds)
