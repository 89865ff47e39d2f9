"""/metrics in the Prometheus text format (prometheus_client, one registry per server): requests by route and
status, tokens in and out, time to first token and request latency histograms, and per model the queue
depth, the rows in the batch, mean batch occupancy and decoding tokens/s, read from the engines at scrape."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

disable_created_metrics()   # the *_created series double the output and no dashboard reads them
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class _EngineGauges:
    """A custom collector: gauges computed from the served models' engines when scraped."""

    def __init__(self, models: dict):
        self.models = models

    def collect(self):
        queue = GaugeMetricFamily("lmforge_queue_depth", "Requests waiting to join a batch", labels=["model"])
        running = GaugeMetricFamily("lmforge_batch_rows", "Sequences in the running batch", labels=["model"])
        occupancy = GaugeMetricFamily("lmforge_batch_occupancy", "Mean sequences per decoding step",
                                      labels=["model"])
        rate = GaugeMetricFamily("lmforge_tokens_per_second", "Generated tokens per second of engine time",
                                 labels=["model"])
        generated = CounterMetricFamily("lmforge_completion_tokens", "Tokens generated", labels=["model"])
        for name, served in self.models.items():
            engine = served.engine
            if engine is None:
                continue
            generated.add_metric([name], engine.stats.generated)
            queue.add_metric([name], engine.queue_depth)
            running.add_metric([name], engine.running)
            occupancy.add_metric([name], engine.stats.occupancy)
            rate.add_metric([name], engine.stats.generated / max(engine.stats.busy_seconds, 1e-9))
        yield from (generated, queue, running, occupancy, rate)


class ServerMetrics:
    def __init__(self, models: dict):
        self.registry = CollectorRegistry()
        self.requests = Counter("lmforge_requests", "HTTP requests", ["route", "status"], registry=self.registry)
        self.prompt_tokens = Counter("lmforge_prompt_tokens", "Prompt tokens read", ["model"], registry=self.registry)
        self.latency = Histogram("lmforge_request_latency_seconds", "Time from request to last byte", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.first_token = Histogram("lmforge_time_to_first_token_seconds", "Time from request to first token",
                                     ["model"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.registry.register(_EngineGauges(models))

    def text(self) -> bytes:
        return generate_latest(self.registry)
