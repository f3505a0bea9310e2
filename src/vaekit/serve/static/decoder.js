// The big decoded image: decodes one code at a time, the newest code waiting while a request is in
// flight, and follows the current code. The map's hover shows other codes through showDecoded.
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
      $("decoded-caption").textContent = job.caption;
      $("timing").textContent = `decoded in ${(performance.now() - started).toFixed(0)} ms`;
    } catch (error) { fail(error); }
  }
  decoder.busy = false;
}

export function attachDecoder() {
  subscribe((patch) => { if ("z" in patch && state.z) showDecoded(state.z, state.caption); });
}
