"""Channel settings: see :mod:`sccdm.serving.config` (SCCDM_PORT default 50052, metrics 9102,
SCCDM_CHANNEL_BACKEND picks the backend from :mod:`sccdm.backends`)."""
from sccdm.serving.config import ServiceConfig

SERVICE = "channel"


def load() -> ServiceConfig:
    return ServiceConfig.from_env(SERVICE)
