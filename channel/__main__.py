"""``python -m channel``: serve sccdm.v1.Channel until SIGTERM / SIGINT."""
from sccdm.rpc import sccdm_pb2_grpc
from sccdm.serving.server import run

from .config import SERVICE
from .servicer import ChannelService

if __name__ == "__main__":
    raise SystemExit(run(SERVICE, ChannelService, sccdm_pb2_grpc.add_ChannelServicer_to_server))
