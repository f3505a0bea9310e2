// The big decoded image: decodes one code at a time, the newest code waiting while a request is in
// flight, and follows the current code. The map's hover shows other codes through showDecoded.
// A table run shows the decoded row as a table of its features instead: the value in the data's
// own units, a bar for where it lies against the training data (standardised, +-3 sd across), and
// the selected test row's value beside it.
import {state, subscribe} from "./state.js";
import {api} from "./api.js";
import {$, fail} from "./dom.js";

export const decoder = {busy: false, next: null};

export function showDecoded(z, caption) {
  decoder.next = {z: Array.from(z), caption, run: state.run};
  if (!decoder.busy) pump();
}

async function pump() {
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
      if (answer.values) showFeatures(answer.values[0]);
      $("decoded-caption").textContent = job.caption;
      $("timing").textContent = `decoded in ${(performance.now() - started).toFixed(0)} ms`;
    } catch (error) { fail(error); }
  }
  decoder.busy = false;
}

// -- a table run's features ------------------------------------------------------------------------
const BAR_LIMIT = 3;            // training sd at the bar's ends

export function formatValue(value) {
  if (value === null || value === undefined) return "";
  const size = Math.abs(value);
  if (size >= 1e5 || (size > 0 && size < 1e-3)) return value.toExponential(2);
  return value.toFixed(size >= 1000 ? 0 : size >= 10 ? 1 : size >= 1 ? 2 : 3);
}

export function buildFeatures() {
  const info = state.info, table = $("features");
  const isTable = Boolean(info.feature_names);
  document.body.classList.toggle("table-run", isTable);
  $("features-wrap").hidden = !isTable;
  table.replaceChildren();
  if (!isTable) return;
  const head = table.createTHead().insertRow();
  for (const [text, title] of [["feature", ""], ["", `standardised: −${BAR_LIMIT} to +${BAR_LIMIT} training sd`],
                               ["decoded", "the decoded value, in the feature's own units"],
                               ["input", "the selected test row's value"]]) {
    const th = document.createElement("th");
    th.textContent = text; th.title = title;
    head.append(th);
  }
  const body = table.createTBody();
  info.feature_names.forEach((name, d) => {
    const row = body.insertRow();
    row.dataset.feature = d;
    const label = row.insertCell();
    label.className = "name"; label.textContent = name; label.title = name;
    const bar = row.insertCell();
    bar.className = "bar";
    const fill = document.createElement("span");
    bar.append(fill);
    row.insertCell().className = "value";
    row.insertCell().className = "input";
  });
}

export function showFeatures(values) {
  const {feature_mean: mean, feature_scale: scale} = state.info;
  for (const row of $("features").tBodies[0].rows) {
    const d = Number(row.dataset.feature), value = values[d];
    const z = Math.max(-BAR_LIMIT, Math.min(BAR_LIMIT, (value - mean[d]) / scale[d]));
    const fill = row.cells[1].firstChild, width = (50 * Math.abs(z)) / BAR_LIMIT;
    fill.style.left = `${z >= 0 ? 50 : 50 - width}%`;
    fill.style.width = `${width}%`;
    fill.className = z >= 0 ? "up" : "down";
    row.cells[1].title = `${((value - mean[d]) / scale[d]).toFixed(2)} training sd from the training mean`;
    row.cells[2].textContent = formatValue(value);
  }
}

export function showInputFeatures(values) {
  if (!state.info.feature_names) return;
  for (const row of $("features").tBodies[0].rows) {
    row.cells[3].textContent = values ? formatValue(values[Number(row.dataset.feature)]) : "";
  }
}

export function attachDecoder() {
  subscribe((patch, source) => {
    if (source === "run") buildFeatures();
    if ("z" in patch && state.z) showDecoded(state.z, state.caption);
  });
}
