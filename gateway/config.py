"""Gateway settings: see :mod:`sccdm.serving.config` (SCCDM_PORT default 8000; SCCDM_TX_ADDR,
SCCDM_CHANNEL_ADDR, SCCDM_RX_ADDR, SCCDM_REQUEST_TIMEOUT_S, SCCDM_MAX_UPLOAD_MB, SCCDM_MAX_PIXELS)."""
from sccdm.serving.config import ServiceConfig

SERVICE = "gateway"


def load() -> ServiceConfig:
    return ServiceConfig.from_env(SERVICE)
