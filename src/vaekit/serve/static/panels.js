// The panels that show the run and the current code: the header's summary, the run card's facts,
// the selected test image with its reconstruction, the reset button, and the sliders (one per
// latent dimension) that follow the current code and set it.
import {state, subscribe, update, setCode} from "./state.js";
import {testImage, imageName} from "./api.js";
import {$, fail} from "./dom.js";
import {showInputFeatures} from "./decoder.js";

export async function selectTestImage(index) {
  try {
    const found = await testImage(index);
    $("selected-image").src = found.image;
    $("selected-recon").src = found.reconstruction;
    $("selected-label").textContent = `${imageName(found)}: the sliders start from its posterior mean.`;
    showInputFeatures(found.image_values);
    update({selection: {z: found.mean, label: imageName(found), image: found.image}});
    setCode(found.mean, imageName(found));
  } catch (error) { fail(error); }
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
    name.textContent = `z${dim.index} `;   // 0-based, as in the CLI, the figures and the report
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
    input.setAttribute("aria-label", `z${dim.index}`);
    const output = document.createElement("output");
    input.addEventListener("input", () => {
      const z = state.z.slice();
      z[dim.index] = Number(input.value);
      output.textContent = z[dim.index].toFixed(2);
      setCode(z, `z${dim.index} = ${z[dim.index].toFixed(2)} (slider)`, "slider");
    });
    row.append(name, input, output);
    box.append(row);
  }
}
function updateSliders() {
  for (const input of $("sliders").querySelectorAll("input")) {
    const value = state.z[Number(input.dataset.dim)];
    input.value = value;
    input.nextElementSibling.textContent = value.toFixed(2);
  }
}

// -- the run ------------------------------------------------------------------------------------
function describeRun(info) {
  const kind = {ae: "autoencoder", vae: "VAE", "beta-vae": "β-VAE"}[info.model] || info.model;
  return `${kind} · ${info.arch} · latent ${info.latent_dim} · ${info.dataset} · ` +
         `${info.parameters.toLocaleString()} parameters · ${info.likelihood} likelihood`;
}

// Labels take the evaluation: its K for the NLL, and "a loss" instead of nats where the likelihood is
// not a normalised probability (an MSE autoencoder's reconstruction is not in nats). MSE is per pixel for
// images; a table's is per standardised value (eval.json's mse).
const FACTS = [
  ["nll", (e, unit) => `test NLL (${unit}${e.iw_samples ? `, K = ${e.iw_samples}` : ""})`, 2],
  ["nelbo", (e, unit) => `−ELBO (${unit})`, 2], ["recon", (e, unit) => `reconstruction term (${unit})`, 2],
  ["kl", () => "KL (nats)", 2], ["bits_per_dim", () => "bits/dim", 4], ["mse", () => "MSE per pixel", 5],
  ["pca_mse", () => "PCA MSE, same size", 5], ["active_units", () => "active units", 0],
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
  const evaluation = info.evaluation;
  const unit = evaluation.proper_likelihood === 0 || evaluation.proper_likelihood === false ? "a loss, not nats" : "nats";
  for (const [key, label, digits] of FACTS) {
    const name = info.feature_names ? label(evaluation, unit).replace("per pixel", "per standardised value") : label(evaluation, unit);
    if (key in evaluation) row(name, key === "active_units" ? `${evaluation[key]} of ${info.latent_dim}` : Number(evaluation[key]).toFixed(digits));
  }
}

function showRun() {
  const info = state.info;
  $("run-summary").textContent = describeRun(info);
  $("run-id").textContent = state.run;
  showFacts(info);
  for (const id of ["selected-image", "selected-recon"]) $(id).removeAttribute("src");
  $("selected-label").textContent = "Click a dot on the map to select a test image.";
  $("sliders-note").textContent = info.dimensions.some((d) => d.kl !== null) ? "by KL, nats" : "";
  buildSliders();
}

export function attachPanels() {
  subscribe((patch, source) => {
    if (source === "run") showRun();
    if ("z" in patch && state.z && source !== "slider") updateSliders();
  });
  $("reset-code").addEventListener("click", () => {
    if (state.selection) setCode(state.selection.z, state.selection.label);
    else setCode(state.info.start, "mean of the test codes");
  });
}
