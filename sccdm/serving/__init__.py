"""Plumbing shared by the gRPC services and the gateway.

config   - settings from environment variables (the only configuration source)
logs     - structured JSON logging
convert  - tensor <-> protobuf conversion and input validation (the one place for it)
metrics  - Prometheus counters and histograms
batcher  - the dynamic batcher (max batch, max wait)
models   - lazily loaded zoo models per service
server   - gRPC server lifecycle: health, reflection, message limits, graceful shutdown
"""
