// vaekit latent explorer: plain JavaScript modules, no libraries, no build step; everything the page
// shows comes from /api/*. This module boots it: it attaches the others to the store and the page,
// fills the run picker and opens a run. Imports, bottom up: state, dom; api; decoder, plot, panels;
// map (also decoder, plot, panels), tools (also plot); main.
import {state, update, setCode, FRESH_RUN} from "./state.js";
import {api, post, withRun} from "./api.js";
import {status, fail, $} from "./dom.js";
import {attachDecoder, decoder} from "./decoder.js";
import {attachMap} from "./map.js";
import {toPixel, toPoint} from "./plot.js";
import {attachPanels} from "./panels.js";
import {attachTools} from "./tools.js";

async function openRun(id) {
  status(`opening ${id}…`);
  update({run: id});
  try {
    const [info, map] = await Promise.all([api(withRun("/api/info")), api(withRun("/api/map"))]);
    if (state.run !== id) return;
    update({...FRESH_RUN(), info, map}, "run");      // each module resets its part of the page
    setCode(info.start, "mean of the test codes");
    history.replaceState(null, "", `#run=${encodeURIComponent(id)}`);
    document.body.dataset.run = id;
    status("");
  } catch (error) { fail(error); }
}

async function start() {
  attachDecoder();
  attachMap();
  attachPanels();
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

// For the browser console and the browser tests (tests/test_serve_browser.py): the store and a few
// helpers under the global names they had when the page was one script.
Object.assign(window, {state, decoder, toPixel, toPoint, post, withRun});

start();    // a module runs after the document is parsed, so every element is there
