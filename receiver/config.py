"""Receiver settings: see :mod:`sccdm.serving.config` (SCCDM_PORT default 50053, metrics 9103)."""
from sccdm.serving.config import ServiceConfig

SERVICE = "receiver"


def load() -> ServiceConfig:
    return ServiceConfig.from_env(SERVICE)
