from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Tensor(_message.Message):
    __slots__ = ("shape", "dtype", "data")
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    shape: _containers.RepeatedScalarFieldContainer[int]
    dtype: str
    data: bytes
    def __init__(self, shape: _Optional[_Iterable[int]] = ..., dtype: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class ImageGeometry(_message.Message):
    __slots__ = ("height", "width", "padded_height", "padded_width")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    PADDED_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    PADDED_WIDTH_FIELD_NUMBER: _ClassVar[int]
    height: int
    width: int
    padded_height: int
    padded_width: int
    def __init__(self, height: _Optional[int] = ..., width: _Optional[int] = ..., padded_height: _Optional[int] = ..., padded_width: _Optional[int] = ...) -> None: ...

class FrameInfo(_message.Message):
    __slots__ = ("num_symbols", "latent_shape", "geometry", "model", "transmit_power", "tx_snr_db", "cbr")
    NUM_SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    LATENT_SHAPE_FIELD_NUMBER: _ClassVar[int]
    GEOMETRY_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TRANSMIT_POWER_FIELD_NUMBER: _ClassVar[int]
    TX_SNR_DB_FIELD_NUMBER: _ClassVar[int]
    CBR_FIELD_NUMBER: _ClassVar[int]
    num_symbols: int
    latent_shape: _containers.RepeatedScalarFieldContainer[int]
    geometry: ImageGeometry
    model: str
    transmit_power: float
    tx_snr_db: _containers.RepeatedScalarFieldContainer[float]
    cbr: float
    def __init__(self, num_symbols: _Optional[int] = ..., latent_shape: _Optional[_Iterable[int]] = ..., geometry: _Optional[_Union[ImageGeometry, _Mapping]] = ..., model: _Optional[str] = ..., transmit_power: _Optional[float] = ..., tx_snr_db: _Optional[_Iterable[float]] = ..., cbr: _Optional[float] = ...) -> None: ...

class Timings(_message.Message):
    __slots__ = ("queue_ms", "compute_ms", "refine_ms", "batch_requests", "batch_images")
    QUEUE_MS_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_MS_FIELD_NUMBER: _ClassVar[int]
    REFINE_MS_FIELD_NUMBER: _ClassVar[int]
    BATCH_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    BATCH_IMAGES_FIELD_NUMBER: _ClassVar[int]
    queue_ms: float
    compute_ms: float
    refine_ms: float
    batch_requests: int
    batch_images: int
    def __init__(self, queue_ms: _Optional[float] = ..., compute_ms: _Optional[float] = ..., refine_ms: _Optional[float] = ..., batch_requests: _Optional[int] = ..., batch_images: _Optional[int] = ...) -> None: ...

class EncodeRequest(_message.Message):
    __slots__ = ("image", "tensor", "snr_db", "model", "cbr", "channel", "fading")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    TENSOR_FIELD_NUMBER: _ClassVar[int]
    SNR_DB_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CBR_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    FADING_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    tensor: Tensor
    snr_db: float
    model: str
    cbr: float
    channel: str
    fading: str
    def __init__(self, image: _Optional[bytes] = ..., tensor: _Optional[_Union[Tensor, _Mapping]] = ..., snr_db: _Optional[float] = ..., model: _Optional[str] = ..., cbr: _Optional[float] = ..., channel: _Optional[str] = ..., fading: _Optional[str] = ...) -> None: ...

class SymbolFrame(_message.Message):
    __slots__ = ("symbols", "info", "timings")
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    INFO_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    symbols: Tensor
    info: FrameInfo
    timings: Timings
    def __init__(self, symbols: _Optional[_Union[Tensor, _Mapping]] = ..., info: _Optional[_Union[FrameInfo, _Mapping]] = ..., timings: _Optional[_Union[Timings, _Mapping]] = ...) -> None: ...

class ChannelParams(_message.Message):
    __slots__ = ("kind", "snr_db", "fading", "block_size", "csi", "erasure_prob", "seed")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SNR_DB_FIELD_NUMBER: _ClassVar[int]
    FADING_FIELD_NUMBER: _ClassVar[int]
    BLOCK_SIZE_FIELD_NUMBER: _ClassVar[int]
    CSI_FIELD_NUMBER: _ClassVar[int]
    ERASURE_PROB_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    kind: str
    snr_db: float
    fading: str
    block_size: int
    csi: str
    erasure_prob: float
    seed: int
    def __init__(self, kind: _Optional[str] = ..., snr_db: _Optional[float] = ..., fading: _Optional[str] = ..., block_size: _Optional[int] = ..., csi: _Optional[str] = ..., erasure_prob: _Optional[float] = ..., seed: _Optional[int] = ...) -> None: ...

class TransmitRequest(_message.Message):
    __slots__ = ("frame", "channel")
    FRAME_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    frame: SymbolFrame
    channel: ChannelParams
    def __init__(self, frame: _Optional[_Union[SymbolFrame, _Mapping]] = ..., channel: _Optional[_Union[ChannelParams, _Mapping]] = ...) -> None: ...

class ReceivedFrame(_message.Message):
    __slots__ = ("symbols", "csi", "noise_var", "snr_db", "csi_source", "csi_mode", "erasure_mask", "info", "backend", "extras", "seed", "timings", "image_status", "link_status")
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    CSI_FIELD_NUMBER: _ClassVar[int]
    NOISE_VAR_FIELD_NUMBER: _ClassVar[int]
    SNR_DB_FIELD_NUMBER: _ClassVar[int]
    CSI_SOURCE_FIELD_NUMBER: _ClassVar[int]
    CSI_MODE_FIELD_NUMBER: _ClassVar[int]
    ERASURE_MASK_FIELD_NUMBER: _ClassVar[int]
    INFO_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    EXTRAS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_STATUS_FIELD_NUMBER: _ClassVar[int]
    LINK_STATUS_FIELD_NUMBER: _ClassVar[int]
    symbols: Tensor
    csi: Tensor
    noise_var: _containers.RepeatedScalarFieldContainer[float]
    snr_db: _containers.RepeatedScalarFieldContainer[float]
    csi_source: str
    csi_mode: str
    erasure_mask: Tensor
    info: FrameInfo
    backend: str
    extras: _struct_pb2.Struct
    seed: int
    timings: Timings
    image_status: _containers.RepeatedScalarFieldContainer[str]
    link_status: str
    def __init__(self, symbols: _Optional[_Union[Tensor, _Mapping]] = ..., csi: _Optional[_Union[Tensor, _Mapping]] = ..., noise_var: _Optional[_Iterable[float]] = ..., snr_db: _Optional[_Iterable[float]] = ..., csi_source: _Optional[str] = ..., csi_mode: _Optional[str] = ..., erasure_mask: _Optional[_Union[Tensor, _Mapping]] = ..., info: _Optional[_Union[FrameInfo, _Mapping]] = ..., backend: _Optional[str] = ..., extras: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., seed: _Optional[int] = ..., timings: _Optional[_Union[Timings, _Mapping]] = ..., image_status: _Optional[_Iterable[str]] = ..., link_status: _Optional[str] = ...) -> None: ...

class DecodeRequest(_message.Message):
    __slots__ = ("frame", "refine", "seed", "want_png", "want_tensor")
    FRAME_FIELD_NUMBER: _ClassVar[int]
    REFINE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    WANT_PNG_FIELD_NUMBER: _ClassVar[int]
    WANT_TENSOR_FIELD_NUMBER: _ClassVar[int]
    frame: ReceivedFrame
    refine: bool
    seed: int
    want_png: bool
    want_tensor: bool
    def __init__(self, frame: _Optional[_Union[ReceivedFrame, _Mapping]] = ..., refine: _Optional[bool] = ..., seed: _Optional[int] = ..., want_png: _Optional[bool] = ..., want_tensor: _Optional[bool] = ...) -> None: ...

class DecodeResponse(_message.Message):
    __slots__ = ("png", "image", "unrefined_png", "unrefined", "eff_snr_db", "refined", "model", "seed", "timings", "image_status")
    PNG_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    UNREFINED_PNG_FIELD_NUMBER: _ClassVar[int]
    UNREFINED_FIELD_NUMBER: _ClassVar[int]
    EFF_SNR_DB_FIELD_NUMBER: _ClassVar[int]
    REFINED_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_STATUS_FIELD_NUMBER: _ClassVar[int]
    png: _containers.RepeatedScalarFieldContainer[bytes]
    image: Tensor
    unrefined_png: _containers.RepeatedScalarFieldContainer[bytes]
    unrefined: Tensor
    eff_snr_db: _containers.RepeatedScalarFieldContainer[float]
    refined: bool
    model: str
    seed: int
    timings: Timings
    image_status: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, png: _Optional[_Iterable[bytes]] = ..., image: _Optional[_Union[Tensor, _Mapping]] = ..., unrefined_png: _Optional[_Iterable[bytes]] = ..., unrefined: _Optional[_Union[Tensor, _Mapping]] = ..., eff_snr_db: _Optional[_Iterable[float]] = ..., refined: _Optional[bool] = ..., model: _Optional[str] = ..., seed: _Optional[int] = ..., timings: _Optional[_Union[Timings, _Mapping]] = ..., image_status: _Optional[_Iterable[str]] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("name", "loaded", "has_refiner", "is_default", "device", "config", "is_photo_default", "is_rate_default", "channel_default_for", "is_rate_thumb_default")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LOADED_FIELD_NUMBER: _ClassVar[int]
    HAS_REFINER_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    IS_PHOTO_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    IS_RATE_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_DEFAULT_FOR_FIELD_NUMBER: _ClassVar[int]
    IS_RATE_THUMB_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    name: str
    loaded: bool
    has_refiner: bool
    is_default: bool
    device: str
    config: _struct_pb2.Struct
    is_photo_default: bool
    is_rate_default: bool
    channel_default_for: _containers.RepeatedScalarFieldContainer[str]
    is_rate_thumb_default: bool
    def __init__(self, name: _Optional[str] = ..., loaded: _Optional[bool] = ..., has_refiner: _Optional[bool] = ..., is_default: _Optional[bool] = ..., device: _Optional[str] = ..., config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., is_photo_default: _Optional[bool] = ..., is_rate_default: _Optional[bool] = ..., channel_default_for: _Optional[_Iterable[str]] = ..., is_rate_thumb_default: _Optional[bool] = ...) -> None: ...

class ModelList(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ...) -> None: ...
