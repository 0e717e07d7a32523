"""The committed gRPC stubs are exactly what the .proto generates."""
import pytest


def test_regenerating_stubs_gives_identical_files(tmp_path):
    pytest.importorskip("grpc_tools")
    from sccdm.rpc import generate

    fresh = generate.generate(tmp_path)
    for name, text in fresh.items():
        committed = (generate.HERE / name).read_text()
        assert committed == text, f"sccdm/rpc/{name} is stale: run python -m sccdm.rpc.generate"
    assert generate.main(["--check"]) == 0


def test_stubs_import_and_describe_the_three_services():
    from sccdm.rpc import sccdm_pb2, sccdm_pb2_grpc

    services = sccdm_pb2.DESCRIPTOR.services_by_name
    assert set(services) == {"Transmitter", "Channel", "Receiver"}
    assert sccdm_pb2.DESCRIPTOR.package == "sccdm.v1"
    assert {m.name for m in services["Receiver"].methods} == {"Decode", "DecodeStream", "ListModels"}
    assert hasattr(sccdm_pb2_grpc, "add_ChannelServicer_to_server")
