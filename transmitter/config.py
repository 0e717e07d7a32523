"""Transmitter settings: see :mod:`sccdm.serving.config` (SCCDM_PORT default 50051, metrics 9101)."""
from sccdm.serving.config import ServiceConfig

SERVICE = "transmitter"


def load() -> ServiceConfig:
    return ServiceConfig.from_env(SERVICE)
