// The latent map's behaviour: the pointer (hover decodes the point under the cursor and shows the
// nearest test image, a click selects it, a drag moves the current code), the legend (classes on
// and off), and redrawing plot.js's canvas whenever the store changes what it shows.
import {state, subscribe, update, setCode} from "./state.js";
import {testImage, imageName} from "./api.js";
import {$, fail} from "./dom.js";
import {colour, computeView, drawMap, lift, renderDots, toPixel, toPoint, UNLABELLED} from "./plot.js";
import {showDecoded} from "./decoder.js";
import {selectTestImage} from "./panels.js";

const HOVER_RADIUS = 7;         // px: how close the cursor must be to a dot to show its image
const drag = {on: false, moved: false};

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
  const box = $("map").getBoundingClientRect();
  return [event.clientX - box.left, event.clientY - box.top];
}
function describePoint(point) { return `(${point[0].toFixed(2)}, ${point[1].toFixed(2)})`; }

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
      const hidden = new Set(state.hidden);
      hidden.has(k) ? hidden.delete(k) : hidden.add(k);
      item.classList.toggle("off", hidden.has(k));
      update({hidden});
    });
    legend.append(item);
  }
}

function redraw(patch, source) {
  if (source === "run") {
    const how = state.map.method === "pca" ? `PCA of the ${state.info.latent_dim}-D codes` : "the codes themselves";
    const what = state.info.feature_names ? "test rows" : "test images";
    $("map-title").textContent = `${state.map.points.length.toLocaleString()} ${what} · ${how}`;
    computeView(); renderDots(); buildLegend();
  } else if ("hidden" in patch) {
    renderDots();
  }
  if (["z", "marks", "path", "samples", "hidden"].some((key) => key in patch)) drawMap();
}

export function attachMap() {
  subscribe(redraw);
  const c = $("map");
  c.addEventListener("pointerdown", (event) => {
    if (!state.map) return;
    drag.on = true; drag.moved = false;
    c.setPointerCapture(event.pointerId);
  });
  c.addEventListener("pointermove", (event) => {
    if (!state.map) return;
    const [px, py] = eventPixel(event);
    const point = toPoint(px, py);
    if (drag.on) {
      drag.moved = true;
      c.classList.add("dragging");
      $("tooltip").hidden = true;
      setCode(lift(state.z, point), `dragged to ${describePoint(point)}`);
      return;
    }
    showTooltip(nearestDot(px, py), px, py);
    showDecoded(lift(state.z, point), `cursor at ${describePoint(point)}`);
  });
  c.addEventListener("pointerup", (event) => {
    if (!drag.on) return;
    drag.on = false;
    c.classList.remove("dragging");
    if (drag.moved) return;
    const [px, py] = eventPixel(event);
    const dot = nearestDot(px, py);
    if (dot >= 0) selectTestImage(state.map.indices[dot]);
    else { const point = toPoint(px, py); setCode(lift(state.z, point), `map point ${describePoint(point)}`); }
  });
  c.addEventListener("pointerleave", () => {
    $("tooltip").hidden = true;
    if (!drag.on && state.z) showDecoded(state.z, state.caption);
  });
  window.addEventListener("resize", () => { if (state.map) { renderDots(); drawMap(); } });
}
