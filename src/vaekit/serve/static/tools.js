// The tools card: its tabs and the four tools, which make or move the current code: interpolate
// between two marked codes A and B, add an attribute vector, encode an upload, draw samples.
import {state, subscribe, update, setCode} from "./state.js";
import {api, post} from "./api.js";
import {$, status, fail} from "./dom.js";
import {project} from "./plot.js";

const STEPS = 41;               // codes along an interpolation path
const STRIP = 11;               // of which the strip shows this many
let attributeBase = null;       // the code the strength slider is applied to

// -- interpolate ----------------------------------------------------------------------------------
function setEnd(name) {
  const mark = {z: state.z.slice(), point: project(state.z), label: state.caption, image: $("decoded").src};
  update({marks: {...state.marks, [name]: mark}});
  $(`end-${name}`).src = mark.image;
  $(`end-${name}-label`).textContent = mark.label;
  interpolate();
}
async function interpolate() {
  const {a, b} = state.marks;
  if (!a || !b) return;
  try {
    const answer = await post("/api/interpolate", {start: a.z, end: b.z, steps: STEPS, method: $("interp-method").value});
    update({path: answer});
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

// -- attribute ------------------------------------------------------------------------------------
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
}
async function loadAttribute() {
  try {
    const answer = await post("/api/attribute", {plus: $("attr-plus").value, minus: $("attr-minus").value});
    update({attribute: answer});
    $("attr-note").textContent = `v = mean(${answer.plus}) − mean(${answer.minus}), |v| = ${answer.norm.toFixed(2)}, ` +
      `from ${answer.n_plus.toLocaleString()} and ${answer.n_minus.toLocaleString()} training ` +
      `${state.info.feature_names ? "rows" : "images"}.`;
    return answer;
  } catch (error) { fail(error); return null; }
}
async function applyAttribute() {
  const alpha = Number($("attr-strength").value);
  $("attr-value").textContent = alpha.toFixed(2);
  if (!state.attribute && !(await loadAttribute())) return;
  if (!attributeBase) attributeBase = {z: state.z.slice(), caption: state.caption};
  const base = attributeBase, v = state.attribute.vector;
  const sign = alpha < 0 ? "−" : "+";
  setCode(base.z.map((value, d) => value + alpha * v[d]),
          `${base.caption} ${sign} ${Math.abs(alpha).toFixed(2)} × (${state.attribute.plus} − ${state.attribute.minus})`, "attribute");
}
function attributeChanged() {
  update({attribute: null});
  const alpha = Number($("attr-strength").value);
  loadAttribute().then((answer) => { if (answer && alpha !== 0) applyAttribute(); });
}

// -- upload and sample ----------------------------------------------------------------------------
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
    update({marks: {...state.marks, upload: {z: answer.mean, point: answer.point}}});
    setCode(answer.mean, `upload ${file.name}`);
    status("");
  } catch (error) { fail(error); }
}
function meanStd(logvar) { return logvar.reduce((s, v) => s + Math.exp(v / 2), 0) / logvar.length; }

async function drawSamples() {
  try {
    const answer = await post("/api/sample", {n: 16, sampler: $("sampler").value,
                                              temperature: Number($("temperature").value), seed: Math.floor(Math.random() * 1e9)});
    const box = $("samples");
    box.replaceChildren();
    answer.images.forEach((src, i) => {
      const image = document.createElement("img");
      image.className = "pixels"; image.src = src;
      image.addEventListener("click", () => setCode(answer.z[i], `sample ${i + 1} (${$("sampler").value}, T = ${Number($("temperature").value).toFixed(2)})`));
      box.append(image);
    });
    $("sample-note").textContent = answer.warning || "Squares on the map mark the samples.";
    update({samples: answer});
  } catch (error) { fail(error); }
}

// -- wiring -----------------------------------------------------------------------------------------
function resetForRun() {
  const info = state.info;
  for (const id of ["end-a", "end-b", "upload-input", "upload-recon"]) $(id).removeAttribute("src");
  $("end-a-label").textContent = $("end-b-label").textContent = "not set";
  $("strip").replaceChildren(); $("samples").replaceChildren();
  $("scrub").disabled = true; $("scrub").value = 0; $("scrub-value").textContent = "0.00";
  $("upload-note").textContent = ""; $("sample-note").textContent = "";
  $("upload").disabled = !info.can_upload;
  if (!info.can_upload) $("upload-note").textContent = "This run's samples are vectors, not images: nothing to upload.";
  $("sampler").value = info.variational ? "prior" : "gmm";
  fillClassPickers();
}

function followCode(patch, source) {
  if (source === "run") resetForRun();
  if (!("z" in patch)) return;
  if (source !== "attribute") {
    attributeBase = null;
    $("attr-strength").value = 0;
    $("attr-value").textContent = "0.00";
  }
  if (source !== "scrub") markStrip(-1);
}

function attachTabs() {
  for (const button of document.querySelectorAll(".tabs button")) {
    button.addEventListener("click", () => {
      for (const other of document.querySelectorAll(".tabs button")) other.classList.toggle("active", other === button);
      for (const tab of document.querySelectorAll(".tab")) tab.hidden = tab.id !== `tab-${button.dataset.tab}`;
    });
  }
}

export function attachTools() {
  subscribe(followCode);
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
}
