"""``python -m transmitter``: serve sccdm.v1.Transmitter until SIGTERM / SIGINT."""
from sccdm.rpc import sccdm_pb2_grpc
from sccdm.serving.server import run

from .config import SERVICE
from .servicer import TransmitterService

if __name__ == "__main__":
    raise SystemExit(run(SERVICE, TransmitterService, sccdm_pb2_grpc.add_TransmitterServicer_to_server))
