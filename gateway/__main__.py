"""``python -m gateway``: serve the FastAPI app with uvicorn until SIGTERM / SIGINT (uvicorn drains requests)."""
import signal
import sys

import uvicorn

from sccdm.serving.config import ConfigError, ServiceConfig
from sccdm.serving.logs import setup_logging
from sccdm.serving.tls import TLSFiles

from .app import create_app
from .connections import guarded_protocol, raise_open_file_limit


def main() -> int:
    try:
        cfg = ServiceConfig.from_env("gateway")
        TLSFiles.from_env()  # unreadable certificate files stop the start, not the first request
    except ConfigError as e:
        print(f"gateway: configuration error: {e}", file=sys.stderr)
        return 2
    log = setup_logging("gateway", cfg.log_level)
    nofile = raise_open_file_limit()
    # the cap stays below the file limit (listening socket, gRPC channels, logs, spooled uploads)
    max_conn = max(1, min(cfg.max_connections, nofile - 64))
    log.info("listening", extra={"fields": {"addr": f"{cfg.host}:{cfg.port}", "tx": cfg.tx_addr,
                                             "channel": cfg.channel_addr, "rx": cfg.rx_addr,
                                             "max_connections": max_conn, "open_file_limit": nofile,
                                             "request_timeout_s": cfg.request_timeout_s}})
    # uvicorn re-raises the captured SIGTERM/SIGINT after draining; a Python handler turns that into exit 0
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    uvicorn.run(create_app(cfg), host=cfg.host, port=cfg.port, log_config=None, access_log=False,
                timeout_graceful_shutdown=10, timeout_keep_alive=5,
                http=guarded_protocol(max_conn, cfg.header_timeout_s))
    log.info("stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
