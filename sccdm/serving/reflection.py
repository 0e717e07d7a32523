"""gRPC server reflection under both names tools ask for: ``grpc.reflection.v1`` and ``v1alpha``.

grpcio-reflection (1.85) serves only ``v1alpha``, but current grpcurl, Postman and
grpc-js clients try ``v1`` first. The two protocols are the same messages with the
same field numbers under another package, so the ``v1alpha`` servicer answers
``v1`` calls byte for byte; the ``v1`` file descriptor (the ``v1alpha`` one with
its package renamed) is added to the pool so ``v1`` can describe itself too.
"""
from __future__ import annotations

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection
from grpc_reflection.v1alpha import reflection_pb2 as v1alpha_pb2
from grpc_reflection.v1alpha import reflection_pb2_grpc as v1alpha_grpc
from grpc_reflection.v1alpha._async import ReflectionServicer

V1_SERVICE = "grpc.reflection.v1.ServerReflection"
V1_FILE = "grpc/reflection/v1/reflection.proto"


def _add_v1_descriptor() -> None:
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(V1_FILE)
        return
    except KeyError:
        pass
    fdp = descriptor_pb2.FileDescriptorProto()
    v1alpha_pb2.DESCRIPTOR.CopyToProto(fdp)
    old = fdp.package
    fdp.name, fdp.package = V1_FILE, "grpc.reflection.v1"
    for svc in fdp.service:
        for m in svc.method:
            m.input_type = m.input_type.replace(f".{old}.", ".grpc.reflection.v1.")
            m.output_type = m.output_type.replace(f".{old}.", ".grpc.reflection.v1.")
    for msg in fdp.message_type:
        for f in msg.field:
            if f.type_name:
                f.type_name = f.type_name.replace(f".{old}.", ".grpc.reflection.v1.")
    pool.Add(fdp)


def enable(service_names, server: grpc.aio.Server) -> tuple[str, ...]:
    """Serve reflection (both versions) for ``service_names`` on an aio server; returns all names listed."""
    _add_v1_descriptor()
    names = tuple(service_names) + (reflection.SERVICE_NAME, V1_SERVICE)
    servicer = ReflectionServicer(names)
    v1alpha_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(V1_SERVICE, {
        "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
            servicer.ServerReflectionInfo,
            request_deserializer=v1alpha_pb2.ServerReflectionRequest.FromString,
            response_serializer=v1alpha_pb2.ServerReflectionResponse.SerializeToString)}),))
    return names
