// The server: fetch helpers for /api/* (a refusal becomes an Error carrying the server's one-line
// detail) and the current run's cache of test images.
import {state} from "./state.js";

export async function api(path, options = {}) {
  const response = await fetch(path, options);
  let body = null;
  try { body = await response.json(); } catch (e) { /* not JSON */ }
  if (!response.ok) {
    throw new Error((body && body.detail) || `${response.status} ${response.statusText}`);
  }
  return body;
}

export const post = (path, body) => api(path, {method: "POST", headers: {"Content-Type": "application/json"},
                                               body: JSON.stringify({run: state.run, ...body})});

export const withRun = (path) => `${path}${path.includes("?") ? "&" : "?"}run=${encodeURIComponent(state.run)}`;

const cache = {run: null, answers: new Map()};    // index -> promise of /api/test-images/{index}

export function testImage(index) {
  if (cache.run !== state.run) Object.assign(cache, {run: state.run, answers: new Map()});
  if (!cache.answers.has(index)) cache.answers.set(index, api(withRun(`/api/test-images/${index}`)));
  return cache.answers.get(index);
}

export function imageName(found) {
  return `test #${found.index}${found.class_name !== null ? ` (${found.class_name})` : ""}`;
}
