"""Service settings, read from environment variables only.

=========================  =====================================================  ==================
variable                   meaning                                                default
=========================  =====================================================  ==================
SCCDM_HOST                 bind address                                           0.0.0.0
SCCDM_PORT                 listen port                                            transmitter 50051,
                                                                                  channel 50052,
                                                                                  receiver 50053,
                                                                                  gateway 8000
SCCDM_MODEL                default zoo model                                      sc-cdm-cpu
SCCDM_PHOTO_MODEL          zoo model for a request that names none and sends a    sc-cdm-paper-photo
                           photo-sized image (see SCCDM_PHOTO_MIN_SIDE); set to
                           the empty string to turn this off
SCCDM_RATE_MODEL           zoo model for a request that names none and asks for   sc-cdm-paper-photo-rate
                           a cbr the automatic choice cannot send (a rate-
                           adaptive model); empty string: off
SCCDM_RATE_THUMB_MODEL     ... and sends a thumbnail (not photo-sized); empty     sc-cdm-cpu-rate
                           string: SCCDM_RATE_MODEL
SCCDM_RAYLEIGH_MODEL       zoo model for a request that names none and says its   sc-cdm-cpu-rayleigh
                           channel is "rayleigh"; empty string: SCCDM_MODEL
SCCDM_RAYLEIGH_PHOTO_MODEL ... and sends a photo-sized image; empty string:       sc-cdm-paper-photo-
                           SCCDM_PHOTO_MODEL                                      rayleigh
SCCDM_RAYLEIGH_FAST_MODEL  ... "rayleigh" with fading "fast" (one h per symbol),  sc-cdm-cpu-rayleigh-
                           not photo-sized; empty string: SCCDM_RAYLEIGH_MODEL    fast
SCCDM_PHOTO_MIN_SIDE       an image whose smaller side has at least this many     64
                           pixels is "photo-sized" (sc-cdm-cpu is a 32x32
                           CIFAR-10 model)
SCCDM_DEVICE               "auto" (cuda if available, else cpu), "cpu", "cuda:0"  auto
SCCDM_MAX_BATCH            most images per batch in transmitter / receiver        16
SCCDM_MAX_WAIT_MS          longest wait for a batch to fill                       2
SCCDM_MAX_BATCH_PIXELS     most pixels (images x H x W) per batch: large images   65536 (one 256x256,
                           batch worse than they run alone on a CPU              or 16 64x64)
SCCDM_LANE_PIXELS          image sizes (H * W, comma-separated) that split work   16384,262144
                           into lanes, each with its own queue and compute        (128^2, 512^2:
                           thread, so small images keep their latency beside      three lanes)
                           large ones
SCCDM_MAX_QUEUE_PIXELS     most pixels waiting per lane; beyond, a request is     8388608 (two
                           refused at once with RESOURCE_EXHAUSTED + retry-after   2048^2 images)
                           (the gateway: 503 + Retry-After); 0 = no bound
SCCDM_MAX_MESSAGE_MB       gRPC message size limit, both directions               64
SCCDM_LOG_LEVEL            DEBUG, INFO, WARNING, ERROR                            INFO
SCCDM_METRICS_PORT         Prometheus HTTP port of a gRPC service (0 = off)       transmitter 9101,
                                                                                  channel 9102,
                                                                                  receiver 9103
SCCDM_CHANNEL_BACKEND      channel backend (sccdm.backends)                       emulated
SCCDM_MAX_PIXELS           largest image (H * W) accepted                         4194304 (2048^2)
SCCDM_TILE_PIXELS          receiver: images with more pixels (H * W) are decoded  65536 (256^2)
                           and refined in overlapping tiles of at most this many
                           pixels, bounding memory (sccdm/tiling.py; 0 = never)
SCCDM_THREADS              torch intra-op threads (0 = torch's default)           0
SCCDM_TX_ADDR              gateway: transmitter host:port                         127.0.0.1:50051
SCCDM_CHANNEL_ADDR         gateway: channel host:port                             127.0.0.1:50052
SCCDM_RX_ADDR              gateway: receiver host:port                            127.0.0.1:50053
SCCDM_REQUEST_TIMEOUT_S    gateway: deadline of one whole request, propagated to  25
                           every backend call (below common 30 s client
                           timeouts); a request may ask for another (timeout_s)
SCCDM_MAX_REQUEST_TIMEOUT_S
                           gateway: the longest deadline a request may ask for   600
SCCDM_BACKEND_READY_WAIT_S gateway: how long a call waits for a restarting       8
                           backend to connect (then 503); 0 = gRPC retries only
SCCDM_MAX_UPLOAD_MB        gateway: largest upload, counted while it streams      16
SCCDM_MAX_CONNECTIONS      gateway: open connections; past it the oldest idle one  1000
                           is closed (all busy: 503)
SCCDM_HEADER_TIMEOUT_S     gateway: a connection must complete its request        10
                           headers within this (from connect / last answer)
SCCDM_BODY_TIMEOUT_S       gateway: longest pause while an upload streams (408)   30
=========================  =====================================================  ==================

The gateway serves its own /metrics on its HTTP port; 9100 is left to node_exporter.
The transmitter and receiver refuse to start (configuration error, exit code 2) when
SCCDM_MODEL or another model variable (photo, rate, Rayleigh) names a model the zoo does not have (:meth:`ServiceConfig.check_models`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

SERVICES = ("transmitter", "channel", "receiver", "gateway")
DEFAULT_PORTS = {"transmitter": 50051, "channel": 50052, "receiver": 50053, "gateway": 8000}
DEFAULT_METRICS_PORTS = {"transmitter": 9101, "channel": 9102, "receiver": 9103}
GRPC_SERVICE_NAMES = {"transmitter": "sccdm.v1.Transmitter", "channel": "sccdm.v1.Channel",
                      "receiver": "sccdm.v1.Receiver"}
MODEL_SERVICES = ("transmitter", "receiver")   # the services that load zoo models
DEFAULT_PHOTO_MODEL = "sc-cdm-paper-photo"
DEFAULT_RATE_MODEL = "sc-cdm-paper-photo-rate"
DEFAULT_RATE_THUMB_MODEL = "sc-cdm-cpu-rate"
DEFAULT_RAYLEIGH_MODEL = "sc-cdm-cpu-rayleigh"
DEFAULT_RAYLEIGH_PHOTO_MODEL = "sc-cdm-paper-photo-rayleigh"
DEFAULT_RAYLEIGH_FAST_MODEL = "sc-cdm-cpu-rayleigh-fast"


class ConfigError(ValueError):
    """An environment variable holds a value the service cannot use."""


def _get(env, name: str, default, kind):
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return kind(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name}={raw!r} is not a valid {kind.__name__}") from None


def _positive(name: str, value, allow_zero=False):
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"environment variable {name} must be {'>= 0' if allow_zero else '> 0'}, got {value}")
    return value


def _lanes(raw: str) -> tuple:
    try:
        bounds = tuple(sorted({int(x) for x in raw.split(",") if x.strip()}))
    except ValueError:
        raise ConfigError(f"SCCDM_LANE_PIXELS={raw!r}: expected comma-separated pixel counts, e.g. 16384,262144") \
            from None
    if any(b <= 0 for b in bounds):
        raise ConfigError(f"SCCDM_LANE_PIXELS={raw!r}: pixel counts must be > 0")
    return bounds


def resolve_device(spec: str) -> str:
    """"auto" -> "cuda" when torch sees a GPU, else "cpu"; anything else is returned as given."""
    if spec in ("", "auto"):
        import torch
        return "cuda" if torch.cuda.is_available() else "cpu"
    return spec


@dataclass
class ServiceConfig:
    """Settings of one process (a gRPC service or the gateway); build with :meth:`from_env`."""

    service: str
    host: str = "0.0.0.0"
    port: int = 0
    model: str = "sc-cdm-cpu"
    photo_model: str = DEFAULT_PHOTO_MODEL   # "" = off
    photo_min_side: int = 64
    rate_model: str = DEFAULT_RATE_MODEL     # "" = off
    rate_thumb_model: str = DEFAULT_RATE_THUMB_MODEL   # "" = rate_model for thumbnails too
    rayleigh_model: str = DEFAULT_RAYLEIGH_MODEL              # "" = the AWGN choice
    rayleigh_photo_model: str = DEFAULT_RAYLEIGH_PHOTO_MODEL  # "" = the AWGN choice
    rayleigh_fast_model: str = DEFAULT_RAYLEIGH_FAST_MODEL    # "" = the block-fading choice
    device: str = "auto"
    max_batch: int = 16
    max_wait_ms: float = 2.0
    max_batch_pixels: int = 65536
    lane_pixels: tuple = (128 * 128, 512 * 512)
    max_queue_pixels: int = 2 * 2048 * 2048
    max_message_mb: float = 64.0
    log_level: str = "INFO"
    metrics_port: int = 0
    channel_backend: str = "emulated"
    max_pixels: int = 2048 * 2048
    tile_pixels: int = 256 * 256
    threads: int = 0
    tx_addr: str = "127.0.0.1:50051"
    channel_addr: str = "127.0.0.1:50052"
    rx_addr: str = "127.0.0.1:50053"
    request_timeout_s: float = 25.0
    max_request_timeout_s: float = 600.0
    max_upload_mb: float = 16.0
    backend_ready_wait_s: float = 8.0
    max_connections: int = 1000
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    extra: dict = field(default_factory=dict)

    @property
    def max_message_bytes(self) -> int:
        return int(self.max_message_mb * 1024 * 1024)

    def batch_limit(self, height: int, width: int) -> int:
        """Most images of this size per model batch (at least 1)."""
        return max(1, min(self.max_batch, self.max_batch_pixels // max(1, height * width)))

    @property
    def grpc_service_name(self) -> str:
        return GRPC_SERVICE_NAMES.get(self.service, "")

    def check_models(self, known) -> None:
        """:class:`ConfigError` unless every model variable (SCCDM_MODEL and, when on, SCCDM_PHOTO_MODEL,
        SCCDM_RATE_MODEL, SCCDM_RATE_THUMB_MODEL, SCCDM_RAYLEIGH_MODEL, SCCDM_RAYLEIGH_PHOTO_MODEL, SCCDM_RAYLEIGH_FAST_MODEL) names one of
        ``known`` (zoo names)."""
        known = list(known)
        for var, name in (("SCCDM_MODEL", self.model), ("SCCDM_PHOTO_MODEL", self.photo_model),
                          ("SCCDM_RATE_MODEL", self.rate_model), ("SCCDM_RATE_THUMB_MODEL", self.rate_thumb_model),
                          ("SCCDM_RAYLEIGH_MODEL", self.rayleigh_model),
                          ("SCCDM_RAYLEIGH_PHOTO_MODEL", self.rayleigh_photo_model),
                          ("SCCDM_RAYLEIGH_FAST_MODEL", self.rayleigh_fast_model)):
            if name and name not in known:
                off = " (or set it to the empty string to turn it off)" if var != "SCCDM_MODEL" else ""
                raise ConfigError(f"environment variable {var}={name!r} is not a zoo model; "
                                  f"available models: {', '.join(known) or '(none)'}{off}")

    @classmethod
    def from_env(cls, service: str, env=None) -> "ServiceConfig":
        if service not in SERVICES:
            raise ConfigError(f"unknown service {service!r}; expected one of {SERVICES}")
        env = os.environ if env is None else env
        c = cls(
            service=service,
            host=_get(env, "SCCDM_HOST", "0.0.0.0", str),
            port=_get(env, "SCCDM_PORT", DEFAULT_PORTS[service], int),
            model=_get(env, "SCCDM_MODEL", "sc-cdm-cpu", str),
            # unlike the others, set-but-empty is a value here: the photo model off
            photo_model=env.get("SCCDM_PHOTO_MODEL", DEFAULT_PHOTO_MODEL).strip(),
            rate_model=env.get("SCCDM_RATE_MODEL", DEFAULT_RATE_MODEL).strip(),
            rate_thumb_model=env.get("SCCDM_RATE_THUMB_MODEL", DEFAULT_RATE_THUMB_MODEL).strip(),
            rayleigh_model=env.get("SCCDM_RAYLEIGH_MODEL", DEFAULT_RAYLEIGH_MODEL).strip(),
            rayleigh_photo_model=env.get("SCCDM_RAYLEIGH_PHOTO_MODEL", DEFAULT_RAYLEIGH_PHOTO_MODEL).strip(),
            rayleigh_fast_model=env.get("SCCDM_RAYLEIGH_FAST_MODEL", DEFAULT_RAYLEIGH_FAST_MODEL).strip(),
            photo_min_side=_positive("SCCDM_PHOTO_MIN_SIDE", _get(env, "SCCDM_PHOTO_MIN_SIDE", 64, int)),
            device=_get(env, "SCCDM_DEVICE", "auto", str),
            max_batch=_positive("SCCDM_MAX_BATCH", _get(env, "SCCDM_MAX_BATCH", 16, int)),
            max_wait_ms=_positive("SCCDM_MAX_WAIT_MS", _get(env, "SCCDM_MAX_WAIT_MS", 2.0, float), True),
            max_batch_pixels=_positive("SCCDM_MAX_BATCH_PIXELS", _get(env, "SCCDM_MAX_BATCH_PIXELS", 65536, int)),
            lane_pixels=_lanes(_get(env, "SCCDM_LANE_PIXELS", "16384,262144", str)),
            max_queue_pixels=_positive("SCCDM_MAX_QUEUE_PIXELS",
                                       _get(env, "SCCDM_MAX_QUEUE_PIXELS", 2 * 2048 * 2048, int), True),
            max_message_mb=_positive("SCCDM_MAX_MESSAGE_MB", _get(env, "SCCDM_MAX_MESSAGE_MB", 64.0, float)),
            log_level=_get(env, "SCCDM_LOG_LEVEL", "INFO", str).upper(),
            metrics_port=_positive("SCCDM_METRICS_PORT",
                                   _get(env, "SCCDM_METRICS_PORT", DEFAULT_METRICS_PORTS.get(service, 0), int), True),
            channel_backend=_get(env, "SCCDM_CHANNEL_BACKEND", "emulated", str),
            max_pixels=_positive("SCCDM_MAX_PIXELS", _get(env, "SCCDM_MAX_PIXELS", 2048 * 2048, int)),
            tile_pixels=_positive("SCCDM_TILE_PIXELS", _get(env, "SCCDM_TILE_PIXELS", 256 * 256, int), True),
            threads=_positive("SCCDM_THREADS", _get(env, "SCCDM_THREADS", 0, int), True),
            tx_addr=_get(env, "SCCDM_TX_ADDR", "127.0.0.1:50051", str),
            channel_addr=_get(env, "SCCDM_CHANNEL_ADDR", "127.0.0.1:50052", str),
            rx_addr=_get(env, "SCCDM_RX_ADDR", "127.0.0.1:50053", str),
            request_timeout_s=_positive("SCCDM_REQUEST_TIMEOUT_S", _get(env, "SCCDM_REQUEST_TIMEOUT_S", 25.0, float)),
            max_request_timeout_s=_positive("SCCDM_MAX_REQUEST_TIMEOUT_S",
                                            _get(env, "SCCDM_MAX_REQUEST_TIMEOUT_S", 600.0, float)),
            backend_ready_wait_s=_positive("SCCDM_BACKEND_READY_WAIT_S",
                                           _get(env, "SCCDM_BACKEND_READY_WAIT_S", 8.0, float), True),
            max_upload_mb=_positive("SCCDM_MAX_UPLOAD_MB", _get(env, "SCCDM_MAX_UPLOAD_MB", 16.0, float)),
            max_connections=_positive("SCCDM_MAX_CONNECTIONS", _get(env, "SCCDM_MAX_CONNECTIONS", 1000, int)),
            header_timeout_s=_positive("SCCDM_HEADER_TIMEOUT_S", _get(env, "SCCDM_HEADER_TIMEOUT_S", 10.0, float)),
            body_timeout_s=_positive("SCCDM_BODY_TIMEOUT_S", _get(env, "SCCDM_BODY_TIMEOUT_S", 30.0, float)),
        )
        if not 0 < c.port < 65536:
            raise ConfigError(f"SCCDM_PORT must be in 1..65535, got {c.port}")
        if c.log_level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ConfigError(f"SCCDM_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {c.log_level!r}")
        return c
