// SC-CDM page: sends the chosen image to POST /v1/transmit and draws what comes back.
// Plain JS, no libraries (works offline); every API call carries the token typed into the page, if any.
"use strict";

const $ = (id) => document.getElementById(id);
const SWEEP_SNRS = [0, 3, 6, 9, 12, 15];
const COLORS = { "SC-CDM": "#1f4e79", "NSF": "#e07b00", "DeepJSCC": "#2a9d3f" };

const CROP = 64;      // side of the crop window, image pixels
const CROP_MAG = 4;   // the crop view's magnification

const state = { blob: null, name: "", origUrl: null, inflight: null, busy: false, timer: null, lastReport: null,
                zoom: 1, crop: null, viewGen: 0, cropFrame: 0 };

function token() { return $("token").value.trim(); }
function headers() { const t = token(); return t ? { Authorization: "Bearer " + t } : {}; }

function showError(msg) {
  const box = $("error");
  box.textContent = msg;
  box.hidden = !msg;
}
function setStatus(msg) { $("status").textContent = msg; }

// {detail: "..."} from the gateway (FastAPI may also send a list of {msg}) -> one readable line
async function errorText(resp) {
  let detail = "";
  try {
    const body = await resp.json();
    detail = Array.isArray(body.detail) ? body.detail.map((d) => d.msg || JSON.stringify(d)).join("; ")
                                        : String(body.detail ?? "");
  } catch (e) { detail = resp.statusText; }
  const what = resp.status === 401 ? "Not authorised" : resp.status >= 500 ? "Service problem" : "Request refused";
  return `${what} (HTTP ${resp.status}): ${detail || "no details"}`;
}

function formFor(overrides = {}) {
  const f = new FormData();
  f.append("image", state.blob, state.name || "image.png");
  const v = {
    channel: $("channel").value, snr_db: $("snr").value, refine: $("refine").checked ? "true" : "false",
    erasure_prob: $("erasure").value, model: $("model").value, cbr: $("cbr").value,
    // a person waits longer than a script's default deadline; leaving the page cancels the work
    timeout_s: "300", ...overrides,
  };
  if (v.cbr === "") delete v.cbr;  // the model's own rate
  if (v.channel === "rayleigh") v.fading = $("fading").value;
  const seed = $("seed").value.trim();
  if (seed !== "") v.seed = seed;
  for (const [k, val] of Object.entries(v)) f.append(k, val);
  return f;
}

async function post(form, signal) {
  const resp = await fetch("/v1/transmit", { method: "POST", body: form, headers: headers(), signal });
  if (!resp.ok) throw new Error(await errorText(resp));
  return resp.json();
}

function fmt(x, d) { return Number.isFinite(x) ? x.toFixed(d) : "\u2014"; }
function dl(el, rows) {
  el.replaceChildren(...rows.flatMap(([k, v]) => {
    const dt = document.createElement("dt"), dd = document.createElement("dd");
    dt.textContent = k; dd.textContent = v;
    return [dt, dd];
  }));
}
function png(b64) { return "data:image/png;base64," + b64; }

function setImage(blob, name) {
  state.blob = blob; state.name = name;
  if (state.origUrl) URL.revokeObjectURL(state.origUrl);
  state.origUrl = URL.createObjectURL(blob);
  $("send").disabled = false; $("sweep").disabled = false;
}

async function transmit() {
  if (!state.blob) return;
  if (state.inflight) state.inflight.abort();  // the newest settings win
  const ctl = new AbortController();
  state.inflight = ctl;
  setStatus("sending\u2026");
  const t0 = performance.now();
  try {
    const rep = await post(formFor(), ctl.signal);
    if (ctl.signal.aborted) return;
    showError("");
    render(rep);
    setStatus(`done in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
  } catch (e) {
    if (e.name === "AbortError") return;
    showError(e.message.startsWith("Failed to fetch") ? "Cannot reach the gateway: " + e.message : e.message);
    setStatus("");
  } finally {
    if (state.inflight === ctl) state.inflight = null;
  }
}

function render(rep) {
  state.lastReport = rep;
  $("results").hidden = false;
  $("img-orig").src = state.origUrl;
  dl($("m-orig"), [["size", `${rep.width}\u00d7${rep.height}`], ["channel uses", String(rep.channel_uses)],
                   ["CBR", fmt(rep.cbr, 4)]]);
  const shat = rep.s_hat || { image: rep.image, psnr_db: rep.psnr_db, ssim: rep.ssim };
  $("img-shat").src = png(shat.image);
  dl($("m-shat"), [["PSNR", fmt(shat.psnr_db, 2) + " dB"], ["SSIM", fmt(shat.ssim, 4)]]);
  $("fig-refined").classList.toggle("off", !rep.refined);
  $("err-of").disabled = !rep.s_hat;
  if (!rep.s_hat) $("err-of").value = "final";
  if (rep.refined) {
    $("img-refined").src = png(rep.image);
    $("img-refined").alt = "refined output";
    dl($("m-refined"), [["PSNR", fmt(rep.psnr_db, 2) + " dB"], ["SSIM", fmt(rep.ssim, 4)],
                        ["gain", (rep.psnr_db - shat.psnr_db >= 0 ? "+" : "") + fmt(rep.psnr_db - shat.psnr_db, 2) + " dB"]]);
  } else {
    $("img-refined").removeAttribute("src");
    $("img-refined").alt = "refinement off";
    dl($("m-refined"), [["refinement", "off"]]);
  }
  updateView();
  drawConstellation($("constellation"), rep.received_symbols || []);
  renderTimings(rep.timings_ms || {});
  const c = rep.channel;
  $("link-info").textContent = `${rep.model}; ${c.kind}${c.kind === "rayleigh" ? " (" + c.fading + ")" : ""} at ` +
    `${fmt(c.snr_db, 1)} dB, erasures ${fmt(rep.erased_fraction * 100, 1)} %; estimated SNR ${fmt(rep.est_snr_db, 1)} dB, ` +
    `after equalisation ${fmt(rep.eff_snr_db, 1)} dB (${rep.csi_source} CSI, ${rep.csi_mode}); seed ${rep.seed}; ` +
    `${rep.channel_uses} channel uses, CBR ${fmt(rep.cbr, 4)} (1/${fmt(1 / rep.cbr, 1)})` +
    (rep.on_air ? `; on the air with framing ${rep.on_air.channel_uses} (CBR ${fmt(rep.on_air.cbr, 4)})` : "");
  // a lost frame decodes to a guess from nothing: say so where the result is, not only in the numbers
  if (rep.image_status === "lost") {
    showError(`The channel lost this image's frame; the outputs are the decoder's guess from no symbols. ` +
              (rep.link_status || ""));
  }
}

function renderTimings(t) {
  const rows = [["upload + decode", t.upload_decode], ["encode (tx)", t.encode], ["channel", t.channel],
                ["decode (rx)", t.decode], ["of which refinement", t.refine], ["total", t.total]];
  const max = Math.max(1, ...rows.map((r) => r[1] || 0));
  $("timings").tBodies[0].replaceChildren(...rows.map(([k, v]) => {
    const tr = document.createElement("tr");
    const a = document.createElement("td"), b = document.createElement("td"), c = document.createElement("td");
    a.textContent = k; b.textContent = fmt(v, 1) + " ms";
    const bar = document.createElement("span");
    bar.className = "bar"; bar.style.width = Math.round(100 * (v || 0) / max) + "px";
    c.append(bar);
    tr.append(a, b, c);
    return tr;
  }));
}

// canvas sized to its CSS box times the pixel ratio, so lines stay sharp on phones
function prepare(canvas) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || canvas.width, h = Math.round(w * canvas.height / canvas.width) || canvas.height;
  canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  ctx.font = "12px system-ui, sans-serif";
  return { ctx, w, h };
}

function drawConstellation(canvas, pts) {
  const { ctx, w, h } = prepare(canvas);
  let m = 1.5;
  for (const [re, im] of pts) m = Math.max(m, Math.abs(re), Math.abs(im));
  m = Math.min(m * 1.05, 8);
  const sx = (x) => w / 2 + x / m * (w / 2 - 8), sy = (y) => h / 2 - y / m * (h / 2 - 8);
  ctx.strokeStyle = "#ccd"; ctx.lineWidth = 1;
  ctx.beginPath(); ctx.moveTo(0, h / 2); ctx.lineTo(w, h / 2); ctx.moveTo(w / 2, 0); ctx.lineTo(w / 2, h); ctx.stroke();
  ctx.beginPath(); ctx.arc(w / 2, h / 2, (w / 2 - 8) / m, 0, 2 * Math.PI); ctx.stroke();  // unit power
  ctx.fillStyle = "rgba(31, 78, 121, 0.6)";
  for (const [re, im] of pts) { ctx.beginPath(); ctx.arc(sx(re), sy(im), 2, 0, 2 * Math.PI); ctx.fill(); }
  ctx.fillStyle = "#555";
  ctx.fillText(`I/Q, \u00b1${m.toFixed(1)}; ${pts.length} symbols; circle: unit power`, 6, h - 6);
}

function drawSweep(canvas, rows) {
  const { ctx, w, h } = prepare(canvas);
  const L = 48, R = 12, T = 12, B = 36;
  const series = Object.keys(COLORS);
  const vals = rows.flatMap((r) => series.map((s) => r[s])).filter(Number.isFinite);
  let lo = vals.length ? Math.floor(Math.min(...vals) / 2) * 2 : 10, hi = vals.length ? Math.ceil(Math.max(...vals) / 2) * 2 : 30;
  if (hi - lo < 4) hi = lo + 4;
  const x0 = SWEEP_SNRS[0], x1 = SWEEP_SNRS[SWEEP_SNRS.length - 1];
  const sx = (x) => L + (x - x0) / (x1 - x0) * (w - L - R), sy = (y) => T + (hi - y) / (hi - lo) * (h - T - B);
  ctx.strokeStyle = "#e3e6ea"; ctx.fillStyle = "#555"; ctx.lineWidth = 1;
  ctx.textAlign = "center";
  for (const x of SWEEP_SNRS) {
    ctx.beginPath(); ctx.moveTo(sx(x), T); ctx.lineTo(sx(x), h - B); ctx.stroke();
    ctx.fillText(String(x), sx(x), h - B + 14);
  }
  ctx.fillText("SNR (dB)", (L + w - R) / 2, h - 4);
  ctx.textAlign = "right";
  const step = (hi - lo) > 12 ? 4 : 2;
  for (let y = lo; y <= hi; y += step) {
    ctx.beginPath(); ctx.moveTo(L, sy(y)); ctx.lineTo(w - R, sy(y)); ctx.stroke();
    ctx.fillText(String(y), L - 6, sy(y) + 4);
  }
  ctx.save(); ctx.translate(12, (T + h - B) / 2); ctx.rotate(-Math.PI / 2); ctx.textAlign = "center";
  ctx.fillText("PSNR (dB)", 0, 0); ctx.restore();
  ctx.textAlign = "left";
  series.forEach((s, i) => {
    const pts = rows.filter((r) => Number.isFinite(r[s]));
    ctx.strokeStyle = ctx.fillStyle = COLORS[s]; ctx.lineWidth = 2;
    ctx.beginPath();
    pts.forEach((r, j) => (j ? ctx.lineTo(sx(r.snr), sy(r[s])) : ctx.moveTo(sx(r.snr), sy(r[s]))));
    ctx.stroke();
    for (const r of pts) { ctx.beginPath(); ctx.arc(sx(r.snr), sy(r[s]), 3.5, 0, 2 * Math.PI); ctx.fill(); }
    const lx = L + 10 + i * 96;
    ctx.fillRect(lx, T + 6, 14, 3); ctx.fillText(s, lx + 18, T + 11);
  });
}

function renderSweepTable(rows) {
  $("sweep-table").tBodies[0].replaceChildren(...rows.map((r) => {
    const tr = document.createElement("tr");
    for (const v of [String(r.snr), fmt(r["SC-CDM"], 2), fmt(r["NSF"], 2), fmt(r["DeepJSCC"], 2)]) {
      const td = document.createElement("td"); td.textContent = v; tr.append(td);
    }
    return tr;
  }));
}

async function sweep() {
  if (!state.blob || state.busy) return;
  state.busy = true;
  $("sweep").disabled = $("send").disabled = true;
  $("sweep-panel").hidden = false;
  showError("");
  const rows = [];
  const total = SWEEP_SNRS.length * 2;
  let done = 0;
  try {
    for (const snr of SWEEP_SNRS) {
      const row = { snr };
      rows.push(row);
      setStatus(`sweep ${done + 1}/${total}: SC-CDM at ${snr} dB`);
      // one refined request gives SC-CDM and, from its pre-refinement output, NSF
      const a = await post(formFor({ snr_db: String(snr), model: "sc-cdm-cpu", refine: "true" }));
      row["SC-CDM"] = a.psnr_db; row["NSF"] = a.s_hat ? a.s_hat.psnr_db : NaN;
      done++;
      drawSweep($("sweep-plot"), rows); renderSweepTable(rows);
      setStatus(`sweep ${done + 1}/${total}: DeepJSCC at ${snr} dB`);
      const b = await post(formFor({ snr_db: String(snr), model: "deepjscc-paper-awgn", refine: "false" }));
      row["DeepJSCC"] = b.psnr_db;
      done++;
      drawSweep($("sweep-plot"), rows); renderSweepTable(rows);
    }
    setStatus("sweep done");
    $("sweep-panel").dataset.done = "true";
  } catch (e) {
    showError("Sweep stopped: " + e.message);
    setStatus("");
  } finally {
    state.busy = false;
    $("sweep").disabled = $("send").disabled = false;
  }
}

// ---- full-size view: zoom, synchronised crop window, error map ------------------------------------------

function natural(el) {
  return el.tagName === "IMG" ? [el.naturalWidth, el.naturalHeight] : [el.width, el.height];
}
function hasPicture(el) { return el.tagName === "IMG" ? !!el.getAttribute("src") && el.naturalWidth > 0 : true; }
function clamp(v, lo, hi) { return Math.min(hi, Math.max(lo, v)); }

// the image the report calls "image": refined output, or the decoder output when refinement is off
function finalImage() { return state.lastReport && state.lastReport.refined ? $("img-refined") : $("img-shat"); }
function errorSource() {
  return $("err-of").value === "shat" && !$("err-of").disabled ? $("img-shat") : finalImage();
}

// waits for the new images, then lays out zoom, error map and crop view; a newer report cancels an older one
async function updateView() {
  const gen = ++state.viewGen;
  const imgs = ["img-orig", "img-shat", "img-refined"].map($).filter((i) => i.getAttribute("src"));
  await Promise.all(imgs.map((i) => i.decode().catch(() => {})));
  if (gen !== state.viewGen) return;
  const [w, h] = natural(finalImage());
  if (!state.crop || state.crop.w !== w || state.crop.h !== h) state.crop = { x: w / 2, y: h / 2, w, h };
  drawErrorMap();
  applyZoom();
  drawCrops();
  $("results").dataset.view = String(gen);
}

function visibleStages() {
  return [...document.querySelectorAll("#results .stage")].filter((st) => st.offsetParent !== null);
}

function applyZoom() {
  const z = state.zoom, fit = z === "fit";
  $("results").classList.toggle("zoom-fit", fit);
  for (const b of document.querySelectorAll(".zoom")) b.setAttribute("aria-pressed", String(b.dataset.zoom === String(z)));
  for (const st of document.querySelectorAll("#results .stage")) {
    const m = st.firstElementChild;
    const [nw, nh] = natural(m);
    if (fit || !nw) { m.style.width = fit ? "100%" : ""; m.style.height = fit ? "auto" : ""; }
    else { m.style.width = nw * z + "px"; m.style.height = nh * z + "px"; }
  }
  for (const st of visibleStages()) {  // nearest neighbour when magnified, smooth when shrunk
    const m = st.firstElementChild;
    m.classList.toggle("pixelated", m.clientWidth > natural(m)[0]);
  }
  placeCropboxes();
}

function cropRect() {
  const c = state.crop;
  if (!c || !c.w) return null;
  const cw = Math.min(CROP, c.w), ch = Math.min(CROP, c.h);
  const x0 = Math.round(clamp(c.x - cw / 2, 0, c.w - cw)), y0 = Math.round(clamp(c.y - ch / 2, 0, c.h - ch));
  return { x0, y0, cw, ch, w: c.w, h: c.h };
}

function placeCropboxes() {
  const r = cropRect();
  for (const box of document.querySelectorAll("#results .cropbox")) {
    box.hidden = !r;
    if (!r) continue;
    // percentages of the picture: the box sits on the same pixels at any zoom
    box.style.left = (100 * r.x0 / r.w) + "%"; box.style.top = (100 * r.y0 / r.h) + "%";
    box.style.width = (100 * r.cw / r.w) + "%"; box.style.height = (100 * r.ch / r.h) + "%";
  }
}

function cropSources() {
  const rep = state.lastReport;
  const list = [["Original (sent)", $("img-orig")], [rep && rep.refined ? "Decoder output" : "Received (decoder output)", $("img-shat")]];
  if (rep && rep.refined) list.push(["Refined output", $("img-refined")]);
  if ($("errmap").checked && !$("fig-err").hidden && $("err-canvas").dataset.ok === "true") list.push(["Error map", $("err-canvas")]);
  return list.filter(([, el]) => hasPicture(el));
}

function drawCrops() {
  const r = cropRect(), box = $("crops");
  $("crop-panel").hidden = !r;
  if (!r) return;
  const srcs = cropSources();
  while (box.children.length > srcs.length) box.lastElementChild.remove();
  while (box.children.length < srcs.length) {
    const f = document.createElement("figure"), cap = document.createElement("figcaption"), c = document.createElement("canvas");
    f.append(cap, c);
    box.append(f);
  }
  srcs.forEach(([label, el], i) => {
    const f = box.children[i], c = f.querySelector("canvas");
    f.querySelector("figcaption").textContent = label;
    const [nw, nh] = natural(el);
    if (c.width !== r.cw || c.height !== r.ch) { c.width = r.cw; c.height = r.ch; }
    c.style.width = r.cw * CROP_MAG + "px";  // height follows (CSS height: auto), also when a phone narrows it
    c.setAttribute("aria-label", `${label}: crop at ${r.x0}, ${r.y0}`);
    c.dataset.x0 = String(r.x0); c.dataset.y0 = String(r.y0);
    const ctx = c.getContext("2d");
    ctx.imageSmoothingEnabled = false;
    ctx.clearRect(0, 0, r.cw, r.ch);
    // the same window in relative terms, should a picture ever differ in size from the received one
    ctx.drawImage(el, r.x0 * nw / r.w, r.y0 * nh / r.h, r.cw * nw / r.w, r.ch * nh / r.h, 0, 0, r.cw, r.ch);
  });
  $("crop-info").textContent = `${r.cw}\u00d7${r.ch} pixels at x ${r.x0}, y ${r.y0} of ${r.w}\u00d7${r.h}, shown \u00d7${CROP_MAG}`;
  $("crop-panel").dataset.x0 = String(r.x0); $("crop-panel").dataset.y0 = String(r.y0);
}

function cropLater() {  // pointer moves come faster than frames
  if (state.cropFrame) return;
  state.cropFrame = requestAnimationFrame(() => { state.cropFrame = 0; placeCropboxes(); drawCrops(); });
}

function moveCropTo(stage, e) {
  if (!state.crop) return;
  const rect = stage.firstElementChild.getBoundingClientRect();
  if (!rect.width || !rect.height) return;
  state.crop.x = clamp((e.clientX - rect.left) / rect.width, 0, 1) * state.crop.w;
  state.crop.y = clamp((e.clientY - rect.top) / rect.height, 0, 1) * state.crop.h;
  cropLater();
}

// 0..1 -> [r, g, b]: grey, or "heat" (black, red, yellow, white)
function colour(t, heat) {
  if (!heat) { const v = Math.round(255 * t); return [v, v, v]; }
  return [clamp(3 * t, 0, 1), clamp(3 * t - 1, 0, 1), clamp(3 * t - 2, 0, 1)].map((v) => Math.round(255 * v));
}

function pixelsOf(img, w, h) {
  const c = document.createElement("canvas");
  c.width = w; c.height = h;
  const ctx = c.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(img, 0, 0, w, h);
  return ctx.getImageData(0, 0, w, h).data;
}

function drawLegend(gain, heat) {
  const c = $("err-legend"), ctx = c.getContext("2d"), row = ctx.createImageData(c.width, 1);
  for (let i = 0; i < c.width; i++) {
    const [r, g, b] = colour(i / (c.width - 1), heat);
    row.data.set([r, g, b, 255], 4 * i);
  }
  ctx.putImageData(row, 0, 0);
  const sat = 255 / gain, satText = (Number.isInteger(sat) ? String(sat) : sat.toFixed(1)) + "/255";
  $("err-legend-max").textContent = (gain > 1 ? "\u2265 " : "") + satText;
  $("err-legend-text").textContent = `pixel = ${gain} \u00d7 mean over R, G, B of |received \u2212 sent| ` +
    `(8-bit values): black means no error, white an error of ${gain > 1 ? "at least " : ""}${satText}`;
}

// |received - sent| per pixel, from the two pictures the page already shows (canvas, no server round trip)
function drawErrorMap() {
  const rep = state.lastReport, on = $("errmap").checked && !!rep;
  const fig = $("fig-err"), cv = $("err-canvas");
  fig.hidden = !on;
  cv.dataset.ok = "false";
  if (!on) return;
  const sent = $("img-orig"), rx = errorSource();
  const [w, h] = natural(rx), [sw, sh] = natural(sent);
  const gain = Number($("err-gain").value) || 4, heat = $("err-colors").value === "heat";
  const shat = rx === $("img-shat") && rep.refined;
  $("err-caption").textContent = `Error map: |${shat ? "decoder output" : "received"} \u2212 sent| \u00d7${gain}`;
  drawLegend(gain, heat);
  if (!w || !sw || sw !== w || sh !== h) {
    cv.width = 1; cv.height = 1;
    dl($("m-err"), [["error map", !w || !sw ? "no image yet" : `sizes differ: sent ${sw}\u00d7${sh}, received ${w}\u00d7${h}`]]);
    return;
  }
  const a = pixelsOf(sent, w, h), b = pixelsOf(rx, w, h);
  cv.width = w; cv.height = h;
  const ctx = cv.getContext("2d"), out = ctx.createImageData(w, h), o = out.data;
  const lut = [];
  for (let v = 0; v < 256; v++) lut.push(colour(v / 255, heat));
  let sum = 0, sq = 0, max = 0;
  for (let i = 0; i < a.length; i += 4) {
    const dr = Math.abs(a[i] - b[i]), dg = Math.abs(a[i + 1] - b[i + 1]), db = Math.abs(a[i + 2] - b[i + 2]);
    const e = (dr + dg + db) / 3;
    sum += e; sq += dr * dr + dg * dg + db * db; max = Math.max(max, dr, dg, db);
    const [r, g, bl] = lut[Math.min(255, Math.round(e * gain))];
    o[i] = r; o[i + 1] = g; o[i + 2] = bl; o[i + 3] = 255;
  }
  ctx.putImageData(out, 0, 0);
  cv.dataset.ok = "true";
  const mse = sq / (3 * w * h), reported = shat ? rep.s_hat.psnr_db : rep.psnr_db;
  dl($("m-err"), [["PSNR (report)", fmt(reported, 2) + " dB"],
                  ["PSNR (8-bit, page)", mse > 0 ? fmt(10 * Math.log10(255 * 255 / mse), 2) + " dB" : "\u221e"],
                  ["mean |error|", fmt(sum / (w * h), 2) + "/255"], ["max |error|", max + "/255"]]);
}

function refreshView() { drawErrorMap(); applyZoom(); drawCrops(); }

function initView() {
  for (const b of document.querySelectorAll(".zoom")) b.addEventListener("click", () => {
    state.zoom = b.dataset.zoom === "fit" ? "fit" : Number(b.dataset.zoom);
    applyZoom();
  });
  for (const id of ["errmap", "err-gain", "err-colors", "err-of"]) $(id).addEventListener("change", refreshView);
  for (const st of document.querySelectorAll("#results .stage")) {
    st.addEventListener("pointerdown", (e) => {
      if (e.button !== 0) return;
      e.preventDefault();              // no text selection or image drag
      st.focus({ preventScroll: true });
      st.setPointerCapture(e.pointerId);
      moveCropTo(st, e);
    });
    st.addEventListener("pointermove", (e) => { if (st.hasPointerCapture(e.pointerId)) moveCropTo(st, e); });
    st.addEventListener("keydown", (e) => {  // arrow keys move the window (shift: faster)
      const d = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] }[e.key];
      if (!d || !state.crop) return;
      e.preventDefault();
      const r = cropRect(), step = e.shiftKey ? 32 : 4;
      state.crop.x = clamp(r.x0 + r.cw / 2 + d[0] * step, 0, r.w);
      state.crop.y = clamp(r.y0 + r.ch / 2 + d[1] * step, 0, r.h);
      cropLater();
    });
  }
  // scrolling one picture scrolls the others to the same place
  const vps = [...document.querySelectorAll("#results .viewport")];
  for (const vp of vps) vp.addEventListener("scroll", () => {
    for (const o of vps) {
      if (o === vp || o.offsetParent === null) continue;
      if (Math.abs(o.scrollLeft - vp.scrollLeft) > 0.5) o.scrollLeft = vp.scrollLeft;
      if (Math.abs(o.scrollTop - vp.scrollTop) > 0.5) o.scrollTop = vp.scrollTop;
    }
  }, { passive: true });
}

// ---- samples ---------------------------------------------------------------------------------------------

async function pickSample(b) {
  try {
    const resp = await fetch(b.dataset.src);
    if (!resp.ok) throw new Error(`cannot load the sample (HTTP ${resp.status})`);
    document.querySelectorAll(".sample").forEach((x) => x.classList.toggle("selected", x === b));
    $("file").value = "";
    setImage(await resp.blob(), b.dataset.src.split("/").pop());
    transmit();
  } catch (e) { showError(e.message); }
}

// full-size photographs the gateway serves from scikit-image's bundled data (none if it is not installed)
async function loadPhotos() {
  try {
    const resp = await fetch("/static/samples/photos.json");
    if (!resp.ok) return;
    const { photos } = await resp.json();
    for (const p of photos || []) {
      const b = document.createElement("button"), img = document.createElement("img"), cap = document.createElement("span");
      b.type = "button"; b.className = "sample photo"; b.dataset.src = p.src; b.dataset.name = p.name;
      b.title = `${p.title}, ${p.width}\u00d7${p.height} (full size)`;
      img.src = p.thumb; img.alt = p.name;
      cap.textContent = `${p.width}\u00d7${p.height}`;
      b.append(img, cap);
      $("samples").append(b);
    }
    $("samples").dataset.photos = String((photos || []).length);
  } catch (e) { /* the small samples still work */ }
}

async function loadModels() {
  try {
    const resp = await fetch("/v1/models", { headers: headers() });
    if (!resp.ok) {
      if (resp.status === 401) showError("This gateway needs an API token: type it into the \u201cAPI token\u201d field.");
      return;
    }
    const body = await resp.json();
    const sel = $("model");
    const keep = sel.value;
    const auto = document.createElement("option");
    auto.value = "";
    auto.textContent = "auto";
    const fading = (body.channel_defaults && body.channel_defaults.rayleigh) || [];
    const fast = (body.channel_defaults && body.channel_defaults["rayleigh-fast"]) || [];
    auto.title = `${body.photo_default ? body.photo_default + " for photos, " : ""}${body.default} otherwise` +
      (fading.length ? `; on Rayleigh: ${fading.join(", ")}` : "") +
      (fast.length ? `; on fast Rayleigh fading: ${fast.join(", ")} for thumbnails` : "") +
      (body.rate_default || body.rate_thumb_default ? `; for another CBR: ${[body.rate_thumb_default && body.rate_thumb_default +
        " (thumbnails)", body.rate_default && body.rate_default + (body.rate_thumb_default ? " (photos)" : "")].filter(Boolean).join(", ")}` : "");
    sel.replaceChildren(auto, ...body.models.map((m) => {
      const o = document.createElement("option");
      const rates = (m.config && m.config.rates && m.config.rates.length) ? ", rate-adaptive" : "";
      o.value = m.name; o.textContent = m.name + (m.has_refiner ? "" : " (no refiner)") + rates;
      return o;
    }));
    sel.value = keep && body.models.some((m) => m.name === keep) ? keep : "";
    syncRefine();
    if ($("error").textContent.includes("API token")) showError("");
  } catch (e) { /* the page still works with the server default model */ }
}

function syncRefine() {
  const opt = $("model").selectedOptions[0];
  const noRefiner = opt && opt.textContent.includes("no refiner");
  $("refine").disabled = !!noRefiner;
  if (noRefiner) $("refine").checked = false;
}

function later() {  // a burst of control changes sends one request
  clearTimeout(state.timer);
  state.timer = setTimeout(() => { if (!state.busy) transmit(); }, 200);
}

function init() {
  const saved = sessionStorage.getItem("sccdm-token");
  if (saved) $("token").value = saved;
  $("token").addEventListener("change", () => { sessionStorage.setItem("sccdm-token", token()); loadModels(); });
  $("file").addEventListener("change", () => {
    const f = $("file").files[0];
    if (!f) return;
    document.querySelectorAll(".sample").forEach((b) => b.classList.remove("selected"));
    setImage(f, f.name);
    transmit();
  });
  $("samples").addEventListener("click", (e) => {  // the bundled samples and the photographs added later
    const b = e.target.closest(".sample");
    if (b) pickSample(b);
  });
  $("snr").addEventListener("input", () => { $("snr-out").textContent = $("snr").value + " dB"; });
  $("erasure").addEventListener("input", () => { $("erasure-out").textContent = Number($("erasure").value).toFixed(2); });
  $("channel").addEventListener("change", () => { $("fading").disabled = $("channel").value !== "rayleigh"; });
  $("model").addEventListener("change", syncRefine);
  for (const id of ["snr", "erasure", "channel", "fading", "refine", "model", "cbr", "seed"]) $(id).addEventListener("change", later);
  $("controls").addEventListener("submit", (e) => { e.preventDefault(); transmit(); });
  $("sweep").addEventListener("click", sweep);
  window.addEventListener("resize", () => {
    if (state.lastReport) drawConstellation($("constellation"), state.lastReport.received_symbols || []);
    if (state.lastReport && state.zoom === "fit") applyZoom();
  });
  initView();
  $("results").hidden = true;
  loadModels();
  loadPhotos();
}

document.addEventListener("DOMContentLoaded", init);
