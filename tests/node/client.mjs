// Cross-language client: talks to the three SC-CDM services with grpc-js, knowing only
// proto/sccdm/v1/sccdm.proto (no Python-generated code). tests/test_cross_language.py runs it.
//
//   node client.mjs <transmitter addr> <channel addr> <receiver addr>
//
// Runs Encode -> Transmit -> Decode on a 32x32 image built here, then sends bad inputs, and
// prints one JSON object on stdout. Exits 1 (message on stderr) if the good path fails.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";
import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PROTO_ROOT = path.resolve(HERE, "../../proto");
const DEADLINE_MS = 60_000;
const MAX_MESSAGE = 64 << 20; // the proto's Limits: gRPC's default receive limit is only 4 MiB

// Image and channel of the good path; tests/test_cross_language.py repeats them in Python.
const SIZE = 32;
const SNR_DB = 10;
// Above 2^53 on purpose: a JavaScript Number would round it, so it only survives as a string.
const SEED = "18446744073709551557";

function loadServices() {
  const def = protoLoader.loadSync("sccdm/v1/sccdm.proto", {
    includeDirs: [PROTO_ROOT],
    keepCase: true,   // field names as in the .proto (snr_db, not snrDb)
    longs: String,    // int64 / uint64 as decimal strings: seeds use all 64 bits (see the proto header)
    enums: String,
    defaults: true,   // unset scalars read as their proto3 defaults, as in other languages
    oneofs: true,
  });
  return grpc.loadPackageDefinition(def).sccdm.v1;
}

// uint8 [H, W, 3] RGB, row-major (EncodeRequest.tensor); pixel (y, x, c) = (7y + 3x + 85c) mod 256.
// Not symmetric in y / x / c, so a transposed layout would give a different image.
function testImage(h = SIZE, w = SIZE) {
  const data = Buffer.alloc(h * w * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let c = 0; c < 3; c++) data[(y * w + x) * 3 + c] = (7 * y + 3 * x + 85 * c) % 256;
  return { shape: [h, w, 3], dtype: "uint8", data };
}

// A unary call as a promise; rejects with the grpc ServiceError (code, details).
function call(client, method, request) {
  const deadline = new Date(Date.now() + DEADLINE_MS);
  return new Promise((resolve, reject) =>
    client[method](request, { deadline }, (err, reply) => (err ? reject(err) : resolve(reply))));
}

async function goodPath(tx, ch, rx) {
  const frame = await call(tx, "Encode", { tensor: testImage(), snr_db: SNR_DB });
  // The frames go on unchanged, as the proto asks: Transmit gets the SymbolFrame, Decode the ReceivedFrame.
  const received = await call(ch, "Transmit", { frame, channel: { kind: "awgn", snr_db: SNR_DB, seed: SEED } });
  const decoded = await call(rx, "Decode", { frame: received, want_png: true, want_tensor: false });
  const png = decoded.png[0] ?? Buffer.alloc(0);
  return {
    model: frame.info.model,
    num_symbols: frame.info.num_symbols,          // a string (int64)
    symbols_shape: frame.symbols.shape,           // [B, k] as strings
    symbols_sha256: sha256(frame.symbols.data),
    latent_shape: frame.info.latent_shape,
    channel_seed: received.seed,                  // should come back as SEED, every digit
    noise_var: received.noise_var,
    decode_model: decoded.model,
    png_count: decoded.png.length,
    png_bytes: png.length,
    png_magic_ok: png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])),
    png_base64: png.toString("base64"),
    frame, // kept for the bad inputs below, removed before printing
  };
}

// Each bad input is answered with an error; report its status. `null` means it was wrongly accepted.
async function badInputs(tx, ch, frame) {
  const image = testImage();
  const cases = {
    encode_short_payload: () =>
      call(tx, "Encode", { tensor: { ...image, data: image.data.subarray(1) }, snr_db: SNR_DB }),
    transmit_snr_nan: () => call(ch, "Transmit", { frame, channel: { kind: "awgn", snr_db: NaN, seed: SEED } }),
    transmit_unknown_kind: () => call(ch, "Transmit", { frame, channel: { kind: "rician", snr_db: SNR_DB } }),
  };
  const out = {};
  for (const [name, send] of Object.entries(cases)) {
    try {
      await send();
      out[name] = null;
    } catch (err) {
      if (err.code === undefined) throw err; // not a gRPC status: a bug here, not an answer
      out[name] = { code: err.code, status: grpc.status[err.code], message: err.details };
    }
  }
  return out;
}

function sha256(buf) {
  return createHash("sha256").update(buf).digest("hex");
}

async function main(argv) {
  if (argv.length !== 3) {
    console.error("usage: node client.mjs <transmitter addr> <channel addr> <receiver addr>");
    return 2;
  }
  const v1 = loadServices();
  const opts = { "grpc.max_send_message_length": MAX_MESSAGE, "grpc.max_receive_message_length": MAX_MESSAGE };
  const creds = grpc.credentials.createInsecure();
  const [tx, ch, rx] = [v1.Transmitter, v1.Channel, v1.Receiver].map((S, i) => new S(argv[i], creds, opts));
  try {
    const { frame, ...good } = await goodPath(tx, ch, rx);
    const bad = await badInputs(tx, ch, frame);
    console.log(JSON.stringify({ grpc_js: grpcVersion(), good, bad }));
    return 0;
  } finally {
    for (const c of [tx, ch, rx]) c.close();
  }
}

// The installed grpc-js version, so the report says which client toolchain ran.
function grpcVersion() {
  return JSON.parse(readFileSync(path.join(HERE, "node_modules/@grpc/grpc-js/package.json"), "utf8")).version;
}

main(process.argv.slice(2)).then(
  (rc) => process.exit(rc),
  (err) => {
    const what = err.code !== undefined ? `gRPC ${grpc.status[err.code]}: ${err.details}` : err.stack;
    console.error(`cross-language client failed: ${what}`);
    process.exit(1);
  });
