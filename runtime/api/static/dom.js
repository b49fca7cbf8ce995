// Small DOM helpers. Everything the API returns is put on the page as text, never as markup:
// event data and step outputs come from users.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function ms(text) {
  return text ? Date.parse(text) : null;
}

export function duration(millis) {
  if (millis === null || millis === undefined || Number.isNaN(millis)) return "–";
  if (millis < 1000) return `${Math.max(0, Math.round(millis))}ms`;
  if (millis < 60_000) return `${(millis / 1000).toFixed(1)}s`;
  if (millis < 3_600_000) return `${Math.floor(millis / 60_000)}m ${Math.floor((millis % 60_000) / 1000)}s`;
  if (millis < 86_400_000) return `${Math.floor(millis / 3_600_000)}h ${Math.floor((millis % 3_600_000) / 60_000)}m`;
  return `${Math.floor(millis / 86_400_000)}d ${Math.floor((millis % 86_400_000) / 3_600_000)}h`;
}

export function ago(text) {
  const t = ms(text);
  if (t === null) return "–";
  const d = Date.now() - t;
  if (d < 0) return `in ${duration(-d)}`;
  if (d < 5_000) return "just now";
  if (d < 60_000) return `${Math.floor(d / 1000)}s ago`;
  if (d < 3_600_000) return `${Math.floor(d / 60_000)}m ago`;
  if (d < 86_400_000) return `${Math.floor(d / 3_600_000)}h ago`;
  return `${Math.floor(d / 86_400_000)}d ago`;
}

export function clock(text) {
  const t = ms(text);
  if (t === null) return "–";
  return new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export function stamp(text) {
  const t = ms(text);
  return t === null ? "" : new Date(t).toLocaleString();
}

export function runDuration(run) {
  const start = ms(run.run_started_at);
  if (start === null) return null;
  return (ms(run.ended_at) ?? Date.now()) - start;
}

export function badge(status, extra = "") {
  return h("span", { class: `badge s-${String(status).toLowerCase()} ${extra}`.trim(), "data-status": status }, status);
}

export function json(value) {
  return h("pre", { class: "json" }, value === undefined ? "undefined" : JSON.stringify(value, null, 2));
}

export function shortId(id) {
  return id ? `${id.slice(0, 8)}…${id.slice(-4)}` : "–";
}

export function link(href, ...children) {
  return h("a", { href }, ...children);
}

let toastTimer = null;

export function toast(message, kind = "info") {
  const el = document.getElementById("toast");
  el.textContent = message;
  el.className = `toast ${kind}`;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (el.hidden = true), 4000);
}

export function errorBox(error) {
  return h("div", { class: "error-box", role: "alert" }, error.message || String(error));
}
