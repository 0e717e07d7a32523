"""The HTTP gateway: FastAPI in front of the transmitter, channel and receiver services (``python -m gateway``).

Modules: app (the FastAPI factory), api (the /v1 routes), ops (/healthz, /readyz,
/metrics), clients (the gRPC clients), uploads (image upload checks), errors
(gRPC status -> HTTP), config (env settings).
"""
