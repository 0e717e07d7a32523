"""``python -m receiver``: serve sccdm.v1.Receiver until SIGTERM / SIGINT."""
from sccdm.rpc import sccdm_pb2_grpc
from sccdm.serving.server import run

from .config import SERVICE
from .servicer import ReceiverService

if __name__ == "__main__":
    raise SystemExit(run(SERVICE, ReceiverService, sccdm_pb2_grpc.add_ReceiverServicer_to_server))
