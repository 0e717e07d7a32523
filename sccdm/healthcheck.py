"""A container health probe: exit 0 when a service says it is ready, 1 otherwise.

    python -m sccdm.healthcheck 127.0.0.1:50051            # gRPC health, service ""
    python -m sccdm.healthcheck 127.0.0.1:50051 --service sccdm.Transmitter
    python -m sccdm.healthcheck http://127.0.0.1:8000/healthz   # HTTP: any 2xx

gRPC targets are asked with the standard ``grpc.health.v1.Health/Check``; only
``SERVING`` counts as healthy, so a service that is still loading its weights
(``NOT_SERVING``) keeps its dependants waiting. Docker's ``HEALTHCHECK``, compose
and :mod:`sccdm.deploy.docker_stack` use this; Kubernetes asks the same health service
through its built-in ``grpc:`` probes instead.

Imports only grpc and the standard library (no torch): it runs every few seconds
inside each container and must start fast.
"""
from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request


def check_grpc(target: str, service: str = "", timeout: float = 3.0) -> tuple[bool, str]:
    """Ask ``target`` (host:port) for the health of ``service``; (healthy, status name or error)."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            resp = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as e:
            return False, f"{e.code().name}: {e.details()}"
    name = health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
    return resp.status == health_pb2.HealthCheckResponse.SERVING, name


def check_http(url: str, timeout: float = 3.0) -> tuple[bool, str]:
    """GET ``url``; healthy on a 2xx answer."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= resp.status < 300, f"HTTP {resp.status}"
    except urllib.error.HTTPError as e:
        return False, f"HTTP {e.code}"
    except (urllib.error.URLError, OSError) as e:
        return False, f"unreachable: {getattr(e, 'reason', e)}"


def check(target: str, service: str = "", timeout: float = 3.0) -> tuple[bool, str]:
    if target.startswith(("http://", "https://")):
        return check_http(target, timeout)
    return check_grpc(target, service, timeout)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m sccdm.healthcheck", description=__doc__.split("\n")[0])
    p.add_argument("target", help="host:port of a gRPC service, or an http(s):// URL")
    p.add_argument("--service", default="", help='gRPC health service name (default "": the whole server)')
    p.add_argument("--timeout", type=float, default=3.0, help="seconds (default 3)")
    a = p.parse_args(argv)
    ok, status = check(a.target, a.service, a.timeout)
    print(f"{a.target}: {status}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
