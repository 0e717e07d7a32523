"""JSON schemas of the gateway's answers, added to /openapi.json so clients and the schemathesis
fuzz test (tests/test_fuzz.py) can check every response against them."""
from __future__ import annotations

NUM = {"type": "number"}
STR = {"type": "string"}

QUALITY = {"type": "object", "required": ["psnr_db", "ssim", "image", "image_mime"],
           "properties": {"psnr_db": NUM, "ssim": NUM, "image": {"type": "string", "contentEncoding": "base64"},
                          "image_mime": STR}}

TRANSMIT_REPORT = {
    "title": "TransmitReport", "type": "object",
    "required": ["model", "width", "height", "channel", "seed", "refine", "refined", "psnr_db", "ssim", "image",
                 "image_mime", "channel_uses", "cbr", "latent_shape", "tx_snr_db", "est_snr_db", "eff_snr_db",
                 "noise_var", "csi_source", "csi_mode", "backend", "erased_fraction", "received_symbols", "timings_ms",
                 "image_status"],
    "properties": {
        "model": STR, "width": {"type": "integer", "minimum": 1}, "height": {"type": "integer", "minimum": 1},
        "channel": {"type": "object", "required": ["kind", "snr_db", "fading", "block_size", "csi", "erasure_prob"],
                    "properties": {"kind": {"enum": ["awgn", "rayleigh"]}, "snr_db": NUM,
                                   "fading": {"enum": ["block", "fast"]}, "block_size": {"type": "integer"},
                                   "csi": {"enum": ["mmse", "zf", "abs", "none"]},
                                   "erasure_prob": {"type": "number", "minimum": 0, "maximum": 1}}},
        "seed": {"type": "integer", "minimum": 0},
        "refine": {"type": "boolean", "description": "refinement asked for"},
        "refined": {"type": "boolean", "description": "refinement ran (false for a model without a refiner)"},
        "psnr_db": NUM, "ssim": NUM, "image": {"type": "string", "contentEncoding": "base64"}, "image_mime": STR,
        "quality_from": {"enum": ["float32", "png"]},
        "channel_uses": {"type": "integer", "minimum": 1}, "cbr": NUM,
        "latent_shape": {"type": "array", "items": {"type": "integer"}},
        "tx_snr_db": NUM, "est_snr_db": NUM, "eff_snr_db": NUM, "noise_var": NUM,
        "csi_source": STR, "csi_mode": STR, "backend": STR,
        "erased_fraction": {"type": "number", "minimum": 0, "maximum": 1},
        "received_symbols": {"type": "array", "maxItems": 512,
                             "items": {"type": "array", "minItems": 2, "maxItems": 2, "items": NUM}},
        "s_hat": {**QUALITY, "description": "the decoder output before refinement (only when refined)"},
        "image_status": {"enum": ["ok", "erased", "lost"],
                         "description": "lost: no symbol arrived, the outputs are the decoder's guess from nothing"},
        "link_status": {"type": "string", "description": "the radio backend's account of the frames (may be empty)"},
        "on_air": {"type": "object", "description": "radio backends only: channel uses per image on the air with "
                                                    "the framing overhead, and the CBR that makes",
                   "properties": {"channel_uses": {"type": "integer"}, "overhead_factor": NUM,
                                  "cbr": NUM}},
        "timings_ms": {"type": "object", "required": ["encode", "channel", "decode", "refine", "total"],
                       "additionalProperties": NUM},
    },
}

MODEL_LIST = {
    "title": "ModelList", "type": "object", "required": ["default", "models"],
    "properties": {"default": {"type": ["string", "null"]},
                   # the model a request naming none gets for photo-sized images (null: off)
                   "photo_default": {"type": ["string", "null"]},
                   # ... and when it asks for a cbr the automatic choice cannot send (null: off)
                   "rate_default": {"type": ["string", "null"]},
                   # ... the same for a thumbnail (null: rate_default serves thumbnails too)
                   "rate_thumb_default": {"type": ["string", "null"]},
                   # channel kind -> the models a request naming none gets on it (small, then photo-sized)
                   "channel_defaults": {"type": "object", "additionalProperties": {"type": "array", "items": STR}},
                   "models": {"type": "array", "items": {"type": "object", "required": ["name", "has_refiner"],
                                                         "properties": {"name": STR, "has_refiner": {"type": "boolean"},
                                                                        "loaded": {"type": "boolean"},
                                                                        "is_default": {"type": "boolean"},
                                                                        "is_photo_default": {"type": "boolean"},
                                                                        "is_rate_default": {"type": "boolean"},
                                                                        "is_rate_thumb_default": {"type": "boolean"},
                                                                        "channel_default_for": {
                                                                            "type": "array", "items": STR}}}}},
}

READINESS = {
    "title": "Readiness", "type": "object", "required": ["ready", "backends"],
    "properties": {"ready": {"type": "boolean"}, "backends": {"type": "object", "additionalProperties": STR}},
}

# (path, method) -> {status: schema name}
RESPONSES = {("/v1/transmit", "post"): {"200": "TransmitReport"}, ("/v1/models", "get"): {"200": "ModelList"},
             ("/readyz", "get"): {"200": "Readiness", "503": "Readiness"}}
SCHEMAS = {"TransmitReport": TRANSMIT_REPORT, "ModelList": MODEL_LIST, "Readiness": READINESS}


def add_to(spec: dict) -> None:
    """Put the schemas into an OpenAPI document built by FastAPI (in place)."""
    spec.setdefault("components", {}).setdefault("schemas", {}).update(SCHEMAS)
    for (path, method), codes in RESPONSES.items():
        op = spec.get("paths", {}).get(path, {}).get(method)
        if op is None:
            continue
        for code, name in codes.items():
            r = op.setdefault("responses", {}).setdefault(code, {"description": name})
            r.setdefault("content", {})["application/json"] = {"schema": {"$ref": f"#/components/schemas/{name}"}}
