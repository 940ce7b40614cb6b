// The session (its CSRF token) and the helpers every page uses to talk to the console's API.
export const session = { csrf: "", info: null };
let specsPromise = null;

export const $ = (id) => document.getElementById(id);

export function banner(text) {
  const el = $("banner");
  el.textContent = text;
  el.hidden = !text;
}

async function answer(response) {
  if (response.status === 401) {
    banner("Not logged in, or the session expired: open the login link streamq printed.");
  }
  const text = await response.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = { error: text || `${response.status} ${response.statusText}` };
  }
  if (!response.ok && !body.error) body.error = `${response.status} ${response.statusText}`;
  return body;
}

export async function getJSON(path) {
  return answer(await fetch(path, { credentials: "same-origin" }));
}

// Every state-changing request carries the session's CSRF token.
export function postRaw(path, body) {
  return fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": session.csrf },
    body: JSON.stringify(body),
  });
}

export async function postJSON(path, body) {
  return answer(await postRaw(path, body));
}

// The table specs, fetched once: the Tables page and the editors' completion share them.
export function specs() {
  if (!specsPromise) specsPromise = getJSON("/api/tables").then((t) => (Array.isArray(t) ? t : []));
  return specsPromise;
}

export function go(page) {
  location.hash = page;
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "style") node.style.cssText = value; // CSSOM: allowed by the page's CSP, a style attribute is not
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}
