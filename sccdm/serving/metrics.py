"""Prometheus metrics shared by the services and the gateway (one registry per process).

sccdm_requests_total{service,method,code}     every finished RPC / HTTP request
sccdm_errors_total{service,method,code}       the ones that failed
sccdm_request_latency_seconds{service,method} latency histogram
sccdm_batch_size{service}                     images per model batch (dynamic batcher)
sccdm_batch_requests{service}                 requests per model batch
sccdm_queue_wait_seconds{service}             time a request waited for its batch
sccdm_ready{service}                          1 once the model is loaded
sccdm_rejected_total{service}                 requests refused at once because the queue was full
sccdm_abandoned_total{service}                batches stopped mid-computation because every caller had gone
"""
from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest, start_http_server

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)

REQUESTS = Counter("sccdm_requests_total", "Finished requests", ["service", "method", "code"])
ERRORS = Counter("sccdm_errors_total", "Failed requests", ["service", "method", "code"])
LATENCY = Histogram("sccdm_request_latency_seconds", "Request latency", ["service", "method"],
                    buckets=LATENCY_BUCKETS)
BATCH_SIZE = Histogram("sccdm_batch_size", "Images per model batch", ["service"], buckets=BATCH_BUCKETS)
BATCH_REQUESTS = Histogram("sccdm_batch_requests", "Requests per model batch", ["service"], buckets=BATCH_BUCKETS)
QUEUE_WAIT = Histogram("sccdm_queue_wait_seconds", "Wait in the batcher queue", ["service"],
                       buckets=LATENCY_BUCKETS)
REJECTED = Counter("sccdm_rejected_total", "Requests refused because the batcher queue was full", ["service"])
ABANDONED = Counter("sccdm_abandoned_total", "Batches stopped because every caller had gone", ["service"])
READY = Gauge("sccdm_ready", "1 when the service can answer", ["service"])


def observe(service: str, method: str, code: str, seconds: float) -> None:
    REQUESTS.labels(service, method, code).inc()
    LATENCY.labels(service, method).observe(seconds)
    if code not in ("OK", "200", "201", "204"):
        ERRORS.labels(service, method, code).inc()


def serve_metrics(port: int, host: str = "0.0.0.0"):
    """Start the Prometheus HTTP endpoint (port 0 = off). Returns the server or None."""
    if not port:
        return None
    return start_http_server(port, addr=host)


def exposition() -> tuple[bytes, str]:
    """(body, content type) of the text exposition, for an HTTP /metrics route."""
    return generate_latest(), CONTENT_TYPE_LATEST
