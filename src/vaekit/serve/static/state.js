// The store: the one state object the modules share. It changes only through update(), which then
// tells every subscriber what changed (the patch) and why (the source: "run", "slider", "scrub",
// "attribute" or ""). Imports nothing; the other modules import it.

export const state = {
  run: null, info: null, map: null,
  z: null, caption: "",         // the current code and what it is
  selection: null,              // the selected test image {z, label, image}
  hidden: new Set(),            // classes switched off in the legend
  marks: {},                    // name -> {point, z, label, image}
  path: null,                   // interpolation {z, images, points}
  samples: null,                // {z, images, points}
  attribute: null,              // the /api/attribute answer in use
};

const listeners = [];

export function subscribe(listener) {
  listeners.push(listener);
}

export function update(patch, source = "") {
  Object.assign(state, patch);
  for (const listener of listeners) listener(patch, source);
}

// The current code: every module that shows it (map, sliders, decoded image, tools) follows it.
export function setCode(z, caption, source = "") {
  update({z: Array.from(z), caption}, source);
}

// What a newly opened run starts from (main.js's openRun adds info and map).
export const FRESH_RUN = () => ({z: null, caption: "", selection: null, hidden: new Set(), marks: {},
                                 path: null, samples: null, attribute: null});
