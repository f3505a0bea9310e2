// Page helpers every module shares: element lookup and the status line in the footer.

export const $ = (id) => document.getElementById(id);

export function status(text, error = false) {
  const element = $("status");
  element.textContent = text;
  element.classList.toggle("error", error);
}

export function fail(error) {
  status(error.message || String(error), true);
}
