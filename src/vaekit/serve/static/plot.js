// What the latent-map canvas draws: the map plane (codes <-> map points), the view and its pixels,
// the scatter of test codes (cached per run / legend change / resize), the axes and the overlays
// (path, samples, marks, the current code). Drawing only; map.js handles the pointer.
import {state} from "./state.js";
import {$} from "./dom.js";

const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
export const UNLABELLED = "#5470a8";
const MARGIN = {left: 34, right: 10, top: 10, bottom: 30};
const canvas = () => $("map");
let view = null;                // map bounds
let dots = null;                // the scatter, an offscreen canvas

export function colour(label) { return label === null ? UNLABELLED : COLOURS[label % COLOURS.length]; }

// -- the map plane -------------------------------------------------------------------------------
export function project(z) {
  const {mean, axes} = state.map;
  return [0, 1].map((k) => z.reduce((sum, value, d) => sum + (value - mean[d]) * axes[k][d], 0));
}
export function lift(z, point) {   // the code z moved within the map's plane until it projects onto point
  const {axes} = state.map;
  const here = project(z);
  return z.map((value, d) => value + (point[0] - here[0]) * axes[0][d] + (point[1] - here[1]) * axes[1][d]);
}

// -- the view ------------------------------------------------------------------------------------
export function computeView() {
  const xs = state.map.points.map((p) => p[0]).sort((a, b) => a - b);
  const ys = state.map.points.map((p) => p[1]).sort((a, b) => a - b);
  const at = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))))];
  let [x0, x1, y0, y1] = [at(xs, 0.002), at(xs, 0.998), at(ys, 0.002), at(ys, 0.998)];
  if (state.map.axis_labels[1] === "") { y0 = -1; y1 = 1; }
  const padX = (x1 - x0 || 1) * 0.08, padY = (y1 - y0 || 1) * 0.08;
  view = {x0: x0 - padX, x1: x1 + padX, y0: y0 - padY, y1: y1 + padY};
}
export function toPixel(point) {
  const c = canvas(), v = view;
  const w = c.clientWidth - MARGIN.left - MARGIN.right, h = c.clientHeight - MARGIN.top - MARGIN.bottom;
  return [MARGIN.left + (point[0] - v.x0) / (v.x1 - v.x0) * w,
          MARGIN.top + (1 - (point[1] - v.y0) / (v.y1 - v.y0)) * h];
}
export function toPoint(px, py) {
  const c = canvas(), v = view;
  const w = c.clientWidth - MARGIN.left - MARGIN.right, h = c.clientHeight - MARGIN.top - MARGIN.bottom;
  return [v.x0 + (px - MARGIN.left) / w * (v.x1 - v.x0), v.y0 + (1 - (py - MARGIN.top) / h) * (v.y1 - v.y0)];
}

// -- the scatter and its axes --------------------------------------------------------------------
export function renderDots() {
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
  const c = canvas(), v = view;
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

// -- the overlays, drawn over the cached scatter ---------------------------------------------------
export function drawMap() {
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
