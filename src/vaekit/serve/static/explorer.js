// vaekit latent explorer. Plain JavaScript, no libraries: everything it shows comes from /api/*.
"use strict";

const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const UNLABELLED = "#5470a8";
const STEPS = 41;               // codes along an interpolation path
const STRIP = 11;               // of which the strip shows this many
const HOVER_RADIUS = 7;         // px: how close the cursor must be to a dot to show its image

const $ = (id) => document.getElementById(id);
const state = {
  run: null, info: null, map: null,
  z: null, caption: "",         // the current code and what it is
  hidden: new Set(),            // classes switched off in the legend
  marks: {},                    // name -> {point, z, label, image}
  path: null,                   // interpolation {z, images, points}
  samples: null,                // {points}
  attribute: null,              // {vector, plus, minus}
  attributeBase: null,          // the code the strength slider is applied to
  view: null,                   // map bounds
  testImages: new Map(),        // index -> /api/test-images answer
  dragging: false, moved: false,
};

// -- the API ------------------------------------------------------------------------------------
async function api(path, options = {}) {
  const response = await fetch(path, options);
  let body = null;
  try { body = await response.json(); } catch (e) { /* not JSON */ }
  if (!response.ok) {
    throw new Error((body && body.detail) || `${response.status} ${response.statusText}`);
  }
  return body;
}
const post = (path, body) => api(path, {method: "POST", headers: {"Content-Type": "application/json"},
                                        body: JSON.stringify({run: state.run, ...body})});
const withRun = (path) => `${path}${path.includes("?") ? "&" : "?"}run=${encodeURIComponent(state.run)}`;

function status(text, error = false) {
  const element = $("status");
  element.textContent = text;
  element.classList.toggle("error", error);
}
function fail(error) { status(error.message || String(error), true); }

// -- decoding: one request in flight, the newest code waiting --------------------------------------
const decoder = {busy: false, next: null, run: null};
function showDecoded(z, caption) {
  decoder.next = {z: Array.from(z), caption, run: state.run};
  if (!decoder.busy) pumpDecoder();
}
async function pumpDecoder() {
  decoder.busy = true;
  while (decoder.next) {
    const job = decoder.next;
    decoder.next = null;
    const started = performance.now();
    try {
      const answer = await api("/api/decode", {method: "POST", headers: {"Content-Type": "application/json"},
                                                body: JSON.stringify({run: job.run, z: [job.z]})});
      if (job.run !== state.run) continue;
      $("decoded").src = answer.images[0];
      $("decoded-caption").textContent = job.caption;
      $("timing").textContent = `decoded in ${(performance.now() - started).toFixed(0)} ms`;
    } catch (error) { fail(error); }
  }
  decoder.busy = false;
}

// -- the current code ----------------------------------------------------------------------------
function setCode(z, caption, source = "") {
  state.z = Array.from(z);
  state.caption = caption;
  if (source !== "attribute") {
    state.attributeBase = null;
    $("attr-strength").value = 0;
    $("attr-value").textContent = "0.00";
  }
  if (source !== "scrub") markStrip(-1);
  updateSliders(source === "slider");
  showDecoded(state.z, caption);
  drawMap();
}

function project(z) {
  const {mean, axes} = state.map;
  return [0, 1].map((k) => z.reduce((sum, value, d) => sum + (value - mean[d]) * axes[k][d], 0));
}
function lift(z, point) {       // the code z moved within the map's plane until it projects onto point
  const {axes} = state.map;
  const here = project(z);
  return z.map((value, d) => value + (point[0] - here[0]) * axes[0][d] + (point[1] - here[1]) * axes[1][d]);
}

// -- sliders ------------------------------------------------------------------------------------
function buildSliders() {
  const box = $("sliders");
  box.replaceChildren();
  for (const dim of state.info.dimensions) {
    const row = document.createElement("label");
    row.className = "slider";
    const inactive = dim.kl !== null && dim.kl < 0.01;
    if (inactive) row.classList.add("inactive");
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = `z${dim.index + 1} `;
    if (dim.kl !== null) {
      const kl = document.createElement("small");
      kl.textContent = inactive ? "off" : dim.kl.toFixed(1);
      name.title = `mean KL ${dim.kl.toFixed(3)} nats${inactive ? " (inactive: this dimension carries no information)" : ""}`;
      name.append(kl);
    }
    const input = document.createElement("input");
    input.type = "range";
    input.min = dim.low; input.max = dim.high;
    input.step = (dim.high - dim.low) / 400;
    input.dataset.dim = dim.index;
    input.setAttribute("aria-label", `z${dim.index + 1}`);
    const output = document.createElement("output");
    input.addEventListener("input", () => {
      const z = state.z.slice();
      z[dim.index] = Number(input.value);
      output.textContent = z[dim.index].toFixed(2);
      setCode(z, `z${dim.index + 1} = ${z[dim.index].toFixed(2)} (slider)`, "slider");
    });
    row.append(name, input, output);
    box.append(row);
  }
}
function updateSliders(fromSlider) {
  if (fromSlider) return;
  for (const input of $("sliders").querySelectorAll("input")) {
    const value = state.z[Number(input.dataset.dim)];
    input.value = value;
    input.nextElementSibling.textContent = value.toFixed(2);
  }
}

// -- the map ------------------------------------------------------------------------------------
const canvas = () => $("map");
let dots = null;                // the scatter, drawn once per run / legend change / resize

function computeView() {
  const xs = state.map.points.map((p) => p[0]).sort((a, b) => a - b);
  const ys = state.map.points.map((p) => p[1]).sort((a, b) => a - b);
  const at = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))))];
  let [x0, x1, y0, y1] = [at(xs, 0.002), at(xs, 0.998), at(ys, 0.002), at(ys, 0.998)];
  if (state.map.axis_labels[1] === "") { y0 = -1; y1 = 1; }
  const padX = (x1 - x0 || 1) * 0.08, padY = (y1 - y0 || 1) * 0.08;
  state.view = {x0: x0 - padX, x1: x1 + padX, y0: y0 - padY, y1: y1 + padY};
}
const MARGIN = {left: 34, right: 10, top: 10, bottom: 30};
function toPixel(point) {
  const c = canvas(), v = state.view;
  const w = c.clientWidth - MARGIN.left - MARGIN.right, h = c.clientHeight - MARGIN.top - MARGIN.bottom;
  return [MARGIN.left + (point[0] - v.x0) / (v.x1 - v.x0) * w,
          MARGIN.top + (1 - (point[1] - v.y0) / (v.y1 - v.y0)) * h];
}
function toPoint(px, py) {
  const c = canvas(), v = state.view;
  const w = c.clientWidth - MARGIN.left - MARGIN.right, h = c.clientHeight - MARGIN.top - MARGIN.bottom;
  return [v.x0 + (px - MARGIN.left) / w * (v.x1 - v.x0), v.y0 + (1 - (py - MARGIN.top) / h) * (v.y1 - v.y0)];
}
function colour(label) { return label === null ? UNLABELLED : COLOURS[label % COLOURS.length]; }

function renderDots() {
  const c = canvas(), ratio = window.devicePixelRatio || 1;
  c.width = Math.round(c.clientWidth * ratio);
  c.height = Math.round(c.clientHeight * ratio);
  dots = document.createElement("canvas");
  dots.width = c.width; dots.height = c.height;
  const g = dots.getContext("2d");
  g.scale(ratio, ratio);
  g.fillStyle = "#fbfbfd";
  g.fillRect(0, 0, c.clientWidth, c.clientHeight);
  drawAxes(g);
  clipToPlot(g);
  const labels = state.map.labels;
  g.globalAlpha = 0.62;
  state.map.points.forEach((point, i) => {
    const label = labels ? labels[i] : null;
    if (label !== null && state.hidden.has(label)) return;
    const [x, y] = toPixel(point);
    g.fillStyle = colour(label);
    g.beginPath();
    g.arc(x, y, 2.3, 0, 2 * Math.PI);
    g.fill();
  });
  g.globalAlpha = 1;
}

function clipToPlot(g) {
  const c = canvas();
  g.beginPath();
  g.rect(MARGIN.left, MARGIN.top, c.clientWidth - MARGIN.left - MARGIN.right, c.clientHeight - MARGIN.top - MARGIN.bottom);
  g.clip();
}
function drawAxes(g) {
  const c = canvas(), v = state.view;
  const w = c.clientWidth, h = c.clientHeight;
  g.strokeStyle = "#e6e8ee"; g.lineWidth = 1;
  g.fillStyle = "#8a92a3"; g.font = "10px system-ui, sans-serif";
  for (const value of ticks(v.x0, v.x1)) {
    const [x] = toPixel([value, v.y0]);
    g.beginPath(); g.moveTo(x, MARGIN.top); g.lineTo(x, h - MARGIN.bottom); g.stroke();
    g.textAlign = "center"; g.fillText(format(value), x, h - MARGIN.bottom + 11);
  }
  if (state.map.axis_labels[1] !== "") {
    for (const value of ticks(v.y0, v.y1)) {
      const [, y] = toPixel([v.x0, value]);
      g.beginPath(); g.moveTo(MARGIN.left, y); g.lineTo(w - MARGIN.right, y); g.stroke();
      g.textAlign = "right"; g.fillText(format(value), MARGIN.left - 4, y + 3);
    }
  }
  g.strokeStyle = "#c4c9d4";
  g.strokeRect(MARGIN.left, MARGIN.top, w - MARGIN.left - MARGIN.right, h - MARGIN.top - MARGIN.bottom);
  g.fillStyle = "#4b5366"; g.font = "11px system-ui, sans-serif"; g.textAlign = "center";
  g.fillText(state.map.axis_labels[0], MARGIN.left + (w - MARGIN.left - MARGIN.right) / 2, h - 4);
  g.save();
  g.translate(10, MARGIN.top + (h - MARGIN.top - MARGIN.bottom) / 2);
  g.rotate(-Math.PI / 2);
  g.fillText(state.map.axis_labels[1], 0, 0);
  g.restore();
}
function ticks(low, high) {
  const raw = (high - low) / 6, power = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const out = [];
  for (let value = Math.ceil(low / step) * step; value <= high; value += step) out.push(Math.abs(value) < step / 1e6 ? 0 : value);
  return out;
}
function format(value) { return Math.abs(value) >= 10 || value === Math.round(value) ? value.toFixed(0) : value.toFixed(1); }

function drawMap() {
  if (!state.map || !dots) return;
  const c = canvas(), ratio = window.devicePixelRatio || 1;
  const g = c.getContext("2d");
  g.setTransform(1, 0, 0, 1, 0, 0);
  g.drawImage(dots, 0, 0);
  g.save();
  g.scale(ratio, ratio);
  clipToPlot(g);
  if (state.path) {
    g.strokeStyle = "#1d2330"; g.lineWidth = 2; g.setLineDash([5, 3]);
    g.beginPath();
    state.path.points.forEach((p, i) => { const [x, y] = toPixel(p); i ? g.lineTo(x, y) : g.moveTo(x, y); });
    g.stroke(); g.setLineDash([]);
  }
  if (state.samples) {
    g.strokeStyle = "#1d2330"; g.lineWidth = 1.3;
    for (const p of state.samples.points) { const [x, y] = toPixel(p); g.strokeRect(x - 3.5, y - 3.5, 7, 7); }
  }
  if (state.marks.upload) star(g, toPixel(state.marks.upload.point), 9);
  for (const [name, fill] of [["a", "#d9480f"], ["b", "#0b7285"]]) {
    if (state.marks[name]) badge(g, toPixel(state.marks[name].point), name.toUpperCase(), fill);
  }
  if (state.z) {
    const [x, y] = toPixel(project(state.z));
    g.strokeStyle = "#fff"; g.lineWidth = 4; ring(g, x, y, 8);
    g.strokeStyle = "#1d2330"; g.lineWidth = 2; ring(g, x, y, 8);
    g.beginPath(); g.moveTo(x - 13, y); g.lineTo(x - 5, y); g.moveTo(x + 5, y); g.lineTo(x + 13, y);
    g.moveTo(x, y - 13); g.lineTo(x, y - 5); g.moveTo(x, y + 5); g.lineTo(x, y + 13); g.stroke();
  }
  g.restore();
}
function ring(g, x, y, r) { g.beginPath(); g.arc(x, y, r, 0, 2 * Math.PI); g.stroke(); }
function badge(g, [x, y], text, fill) {
  g.fillStyle = fill; g.strokeStyle = "#fff"; g.lineWidth = 2;
  g.beginPath(); g.arc(x, y, 9, 0, 2 * Math.PI); g.fill(); g.stroke();
  g.fillStyle = "#fff"; g.font = "bold 11px system-ui, sans-serif"; g.textAlign = "center"; g.fillText(text, x, y + 4);
}
function star(g, [x, y], r) {
  g.beginPath();
  for (let i = 0; i < 10; i++) {
    const angle = -Math.PI / 2 + i * Math.PI / 5, radius = i % 2 ? r * 0.45 : r;
    g.lineTo(x + radius * Math.cos(angle), y + radius * Math.sin(angle));
  }
  g.closePath();
  g.fillStyle = "#ffd43b"; g.strokeStyle = "#1d2330"; g.lineWidth = 1.5; g.fill(); g.stroke();
}

function nearestDot(px, py) {
  let best = -1, bestDistance = HOVER_RADIUS * HOVER_RADIUS;
  const labels = state.map.labels;
  state.map.points.forEach((point, i) => {
    if (labels && state.hidden.has(labels[i])) return;
    const [x, y] = toPixel(point);
    const distance = (x - px) ** 2 + (y - py) ** 2;
    if (distance < bestDistance) { best = i; bestDistance = distance; }
  });
  return best;
}
function eventPixel(event) {
  const box = canvas().getBoundingClientRect();
  return [event.clientX - box.left, event.clientY - box.top];
}
function describePoint(point) { return `(${point[0].toFixed(2)}, ${point[1].toFixed(2)})`; }

async function testImage(index) {
  if (!state.testImages.has(index)) state.testImages.set(index, api(withRun(`/api/test-images/${index}`)));
  return state.testImages.get(index);
}
function imageName(found) { return `test #${found.index}${found.class_name !== null ? ` (${found.class_name})` : ""}`; }

async function showTooltip(dot, px, py) {
  const tip = $("tooltip");
  if (dot < 0) { tip.hidden = true; return; }
  const index = state.map.indices[dot];
  tip.dataset.index = index;
  const wrap = $("map-wrap");
  tip.style.left = `${Math.min(px + 14, wrap.clientWidth - 100)}px`;
  tip.style.top = `${Math.max(py - 110, 4)}px`;
  try {
    const found = await testImage(index);
    if (tip.dataset.index !== String(index)) return;
    $("tooltip-image").src = found.image;
    $("tooltip-label").textContent = imageName(found);
    tip.hidden = false;
  } catch (error) { fail(error); }
}

function attachMap() {
  const c = canvas();
  c.addEventListener("pointerdown", (event) => {
    if (!state.map) return;
    state.dragging = true; state.moved = false;
    c.setPointerCapture(event.pointerId);
  });
  c.addEventListener("pointermove", (event) => {
    if (!state.map) return;
    const [px, py] = eventPixel(event);
    const point = toPoint(px, py);
    if (state.dragging) {
      state.moved = true;
      c.classList.add("dragging");
      $("tooltip").hidden = true;
      setCode(lift(state.z, point), `dragged to ${describePoint(point)}`);
      return;
    }
    showTooltip(nearestDot(px, py), px, py);
    showDecoded(lift(state.z, point), `cursor at ${describePoint(point)}`);
  });
  c.addEventListener("pointerup", (event) => {
    if (!state.dragging) return;
    state.dragging = false;
    c.classList.remove("dragging");
    if (state.moved) return;
    const [px, py] = eventPixel(event);
    const dot = nearestDot(px, py);
    if (dot >= 0) selectTestImage(state.map.indices[dot]);
    else { const point = toPoint(px, py); setCode(lift(state.z, point), `map point ${describePoint(point)}`); }
  });
  c.addEventListener("pointerleave", () => {
    $("tooltip").hidden = true;
    if (!state.dragging && state.z) showDecoded(state.z, state.caption);
  });
  window.addEventListener("resize", () => { if (state.map) { renderDots(); drawMap(); } });
}

async function selectTestImage(index) {
  try {
    const found = await testImage(index);
    $("selected-image").src = found.image;
    $("selected-recon").src = found.reconstruction;
    $("selected-label").textContent = `${imageName(found)}: the sliders start from its posterior mean.`;
    state.selection = {z: found.mean, label: imageName(found), image: found.image};
    setCode(found.mean, imageName(found));
  } catch (error) { fail(error); }
}

function buildLegend() {
  const legend = $("legend");
  legend.replaceChildren();
  const names = state.info.class_names;
  if (!state.map.labels) {
    const item = document.createElement("li"), swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = UNLABELLED;
    item.append(swatch, "test images (no labels)");
    legend.append(item);
    return;
  }
  const count = names ? names.length : Math.max(...state.map.labels) + 1;
  for (let k = 0; k < count; k++) {
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = colour(k);
    item.append(swatch, names ? names[k] : String(k));
    item.title = "click to hide or show this class";
    item.addEventListener("click", () => {
      state.hidden.has(k) ? state.hidden.delete(k) : state.hidden.add(k);
      item.classList.toggle("off", state.hidden.has(k));
      renderDots(); drawMap();
    });
    legend.append(item);
  }
}

// -- tools --------------------------------------------------------------------------------------
function attachTabs() {
  for (const button of document.querySelectorAll(".tabs button")) {
    button.addEventListener("click", () => {
      for (const other of document.querySelectorAll(".tabs button")) other.classList.toggle("active", other === button);
      for (const tab of document.querySelectorAll(".tab")) tab.hidden = tab.id !== `tab-${button.dataset.tab}`;
    });
  }
}

function currentMark() {
  return {z: state.z.slice(), point: project(state.z), label: state.caption, image: $("decoded").src};
}
function setEnd(name) {
  state.marks[name] = currentMark();
  $(`end-${name}`).src = state.marks[name].image;
  $(`end-${name}-label`).textContent = state.marks[name].label;
  drawMap();
  interpolate();
}
async function interpolate() {
  const {a, b} = state.marks;
  if (!a || !b) return;
  try {
    const answer = await post("/api/interpolate", {start: a.z, end: b.z, steps: STEPS, method: $("interp-method").value});
    state.path = answer;
    const strip = $("strip");
    strip.replaceChildren();
    for (let i = 0; i < STRIP; i++) {
      const step = Math.round(i * (STEPS - 1) / (STRIP - 1));
      const image = document.createElement("img");
      image.className = "pixels"; image.src = answer.images[step]; image.dataset.step = step;
      image.title = `t = ${(step / (STEPS - 1)).toFixed(2)}`;
      image.addEventListener("click", () => { $("scrub").value = step; scrub(); });
      strip.append(image);
    }
    $("scrub").disabled = false;
    scrub();
  } catch (error) { fail(error); }
}
function scrub() {
  if (!state.path) return;
  const step = Number($("scrub").value), t = step / (STEPS - 1);
  $("scrub-value").textContent = t.toFixed(2);
  markStrip(step);
  setCode(state.path.z[step], `${$("interp-method").value} path A → B, t = ${t.toFixed(2)}`, "scrub");
}
function markStrip(step) {
  for (const image of $("strip").querySelectorAll("img")) image.classList.toggle("current", Number(image.dataset.step) === step);
}

function fillClassPickers() {
  const names = state.info.class_names;
  const usable = state.map.labels && names && names.length > 1;
  for (const id of ["attr-plus", "attr-minus"]) {
    const select = $(id);
    select.replaceChildren();
    (names || []).forEach((name, k) => select.add(new Option(name, String(k))));
    select.disabled = !usable;
  }
  $("attr-strength").disabled = !usable;
  if (usable) { $("attr-plus").value = "0"; $("attr-minus").value = "1"; }
  $("attr-note").textContent = usable ? "" : "This run's data have no classes to build attribute vectors from.";
  state.attribute = null;
}
async function loadAttribute() {
  try {
    const answer = await post("/api/attribute", {plus: $("attr-plus").value, minus: $("attr-minus").value});
    state.attribute = answer;
    $("attr-note").textContent = `v = mean(${answer.plus}) − mean(${answer.minus}), |v| = ${answer.norm.toFixed(2)}, ` +
      `from ${answer.n_plus.toLocaleString()} and ${answer.n_minus.toLocaleString()} training images.`;
    return answer;
  } catch (error) { fail(error); return null; }
}
async function applyAttribute() {
  const alpha = Number($("attr-strength").value);
  $("attr-value").textContent = alpha.toFixed(2);
  if (!state.attribute && !(await loadAttribute())) return;
  if (!state.attributeBase) state.attributeBase = {z: state.z.slice(), caption: state.caption};
  const base = state.attributeBase, v = state.attribute.vector;
  const sign = alpha < 0 ? "−" : "+";
  setCode(base.z.map((value, d) => value + alpha * v[d]),
          `${base.caption} ${sign} ${Math.abs(alpha).toFixed(2)} × (${state.attribute.plus} − ${state.attribute.minus})`, "attribute");
}
function attributeChanged() {
  state.attribute = null;
  const alpha = Number($("attr-strength").value);
  loadAttribute().then((answer) => { if (answer && alpha !== 0) applyAttribute(); });
}

async function upload() {
  const file = $("upload").files[0];
  if (!file) return;
  const form = new FormData();
  form.append("file", file);
  form.append("run", state.run);
  form.append("invert", $("upload-invert").checked ? "true" : "false");
  status(`encoding ${file.name}…`);
  try {
    const answer = await api("/api/encode", {method: "POST", body: form});
    $("upload-input").src = answer.input;
    $("upload-recon").src = answer.reconstruction;
    const spread = answer.logvar ? ` · mean posterior std ${meanStd(answer.logvar).toFixed(2)}` : "";
    $("upload-note").textContent = `${file.name}: marked ★ on the map${spread}.`;
    state.marks.upload = {z: answer.mean, point: answer.point};
    setCode(answer.mean, `upload ${file.name}`);
    status("");
  } catch (error) { fail(error); }
}
function meanStd(logvar) { return logvar.reduce((s, v) => s + Math.exp(v / 2), 0) / logvar.length; }

async function drawSamples() {
  try {
    const answer = await post("/api/sample", {n: 16, sampler: $("sampler").value,
                                              temperature: Number($("temperature").value), seed: Math.floor(Math.random() * 1e9)});
    state.samples = answer;
    const box = $("samples");
    box.replaceChildren();
    answer.images.forEach((src, i) => {
      const image = document.createElement("img");
      image.className = "pixels"; image.src = src;
      image.addEventListener("click", () => setCode(answer.z[i], `sample ${i + 1} (${$("sampler").value}, T = ${Number($("temperature").value).toFixed(2)})`));
      box.append(image);
    });
    $("sample-note").textContent = answer.warning || "Squares on the map mark the samples.";
    drawMap();
  } catch (error) { fail(error); }
}

function attachTools() {
  attachTabs();
  $("set-a").addEventListener("click", () => setEnd("a"));
  $("set-b").addEventListener("click", () => setEnd("b"));
  $("interp-method").addEventListener("change", interpolate);
  $("scrub").addEventListener("input", scrub);
  $("attr-plus").addEventListener("change", attributeChanged);
  $("attr-minus").addEventListener("change", attributeChanged);
  $("attr-strength").addEventListener("input", applyAttribute);
  $("upload").addEventListener("change", upload);
  $("upload-invert").addEventListener("change", upload);
  $("temperature").addEventListener("input", () => { $("temperature-value").textContent = Number($("temperature").value).toFixed(2); });
  $("draw").addEventListener("click", drawSamples);
  $("reset-code").addEventListener("click", () => {
    if (state.selection) setCode(state.selection.z, state.selection.label);
    else setCode(state.info.start, "mean of the test codes");
  });
}

// -- runs ---------------------------------------------------------------------------------------
function describeRun(info) {
  const kind = {ae: "autoencoder", vae: "VAE", "beta-vae": "β-VAE"}[info.model] || info.model;
  return `${kind} · ${info.arch} · latent ${info.latent_dim} · ${info.dataset} · ` +
         `${info.parameters.toLocaleString()} parameters · ${info.likelihood} likelihood`;
}

const FACTS = [
  ["nll", "test NLL (nats)", 2], ["nelbo", "−ELBO (nats)", 2], ["recon", "reconstruction term (nats)", 2],
  ["kl", "KL (nats)", 2], ["bits_per_dim", "bits/dim", 4], ["mse", "MSE per pixel", 5],
  ["pca_mse", "PCA MSE, same size", 5], ["active_units", "active units", 0],
];
function showFacts(info) {
  const table = $("run-facts");
  table.replaceChildren();
  const row = (name, value) => {
    const tr = table.insertRow(), th = document.createElement("th");
    th.textContent = name; tr.append(th);
    tr.insertCell().textContent = value;
  };
  row("model", `${info.model} (${info.variational ? "variational" : "deterministic codes"})`);
  row("epochs trained", String(info.training.epochs));
  if (info.training.best_val_loss !== null) row("best validation loss", info.training.best_val_loss.toFixed(2));
  if (!info.evaluation) { row("evaluation", "none yet: vaekit evaluate RUN"); return; }
  for (const [key, name, digits] of FACTS) {
    if (key in info.evaluation) row(name, key === "active_units" ? `${info.evaluation[key]} of ${info.latent_dim}` : Number(info.evaluation[key]).toFixed(digits));
  }
}

async function openRun(id) {
  status(`opening ${id}…`);
  state.run = id;
  try {
    const [info, map] = await Promise.all([api(withRun("/api/info")), api(withRun("/api/map"))]);
    if (state.run !== id) return;
    Object.assign(state, {info, map, marks: {}, path: null, samples: null, attribute: null, attributeBase: null,
                          selection: null, hidden: new Set(), testImages: new Map()});
    $("run-summary").textContent = describeRun(info);
    $("run-id").textContent = id;
    showFacts(info);
    const how = map.method === "pca" ? `PCA of the ${info.latent_dim}-D codes` : "the codes themselves";
    $("map-title").textContent = `${map.points.length.toLocaleString()} test images · ${how}`;
    for (const id of ["selected-image", "selected-recon", "end-a", "end-b", "upload-input", "upload-recon"]) $(id).removeAttribute("src");
    $("selected-label").textContent = "Click a dot on the map to select a test image.";
    $("end-a-label").textContent = $("end-b-label").textContent = "not set";
    $("strip").replaceChildren(); $("samples").replaceChildren();
    $("scrub").disabled = true; $("scrub").value = 0; $("scrub-value").textContent = "0.00";
    $("upload-note").textContent = ""; $("sample-note").textContent = "";
    $("upload").disabled = !info.can_upload;
    if (!info.can_upload) $("upload-note").textContent = "This run's samples are vectors, not images: nothing to upload.";
    $("sampler").value = info.variational ? "prior" : "gmm";
    $("sliders-note").textContent = info.dimensions.some((d) => d.kl !== null) ? "by KL, nats" : "";
    computeView(); renderDots(); buildLegend(); buildSliders(); fillClassPickers();
    setCode(info.start, "mean of the test codes");
    history.replaceState(null, "", `#run=${encodeURIComponent(id)}`);
    document.body.dataset.run = id;
    status("");
  } catch (error) { fail(error); }
}

async function start() {
  attachMap();
  attachTools();
  try {
    const {runs, default: fallback} = await api("/api/runs");
    const picker = $("run-picker");
    for (const run of runs) {
      const option = new Option(run.error ? `${run.id} (cannot open)` : run.id, run.id);
      option.disabled = Boolean(run.error);
      option.title = run.error || `${run.model}, latent ${run.latent_dim}, ${run.dataset}`;
      picker.add(option);
    }
    picker.disabled = runs.length < 2;
    const wanted = decodeURIComponent((location.hash.match(/run=([^&]+)/) || [])[1] || "");
    const first = runs.some((run) => run.id === wanted && !run.error) ? wanted : fallback;
    picker.value = first;
    picker.addEventListener("change", () => openRun(picker.value));
    await openRun(first);
  } catch (error) { fail(error); }
}

document.addEventListener("DOMContentLoaded", start);
