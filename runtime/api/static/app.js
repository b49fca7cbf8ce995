// The page: a hash router over four views, polling the current one for live status, and the
// operator-key prompt when the API is deployed.

import { forgetToken, get, hasToken, onUnauthorized, useKey } from "./api.js";
import { h, replace } from "./dom.js";
import * as events from "./events.js";
import * as functions from "./functions.js";
import * as run from "./run.js";
import * as runs from "./runs.js";
import { setup as setupSend } from "./send.js";

let current = null;
let timer = null;
let generation = 0;
let inflight = false;

function parse() {
  const hash = location.hash.replace(/^#/, "") || "/runs";
  const [path, search] = hash.split("?");
  const parts = path.split("/").filter(Boolean);
  return { parts, params: new URLSearchParams(search || "") };
}

function route() {
  const { parts, params } = parse();
  const root = document.getElementById("view");
  const mine = ++generation;
  clearTimeout(timer);
  let view;
  let nav = parts[0] || "runs";
  if (parts[0] === "runs" && parts[1]) view = run.mount(root, params, decodeURIComponent(parts[1]));
  else if (parts[0] === "events") view = events.mount(root, params);
  else if (parts[0] === "functions") view = functions.mount(root, params);
  else {
    nav = "runs";
    view = runs.mount(root, params);
  }
  for (const a of document.querySelectorAll("[data-nav]")) a.classList.toggle("active", a.dataset.nav === nav);
  current = view;
  poll(mine);
}

// One refresh at a time; the next one is scheduled when it finishes, and none while the tab is
// hidden (a background tab costs the API nothing).
async function poll(mine) {
  if (mine !== generation) return;
  if (!document.hidden) {
    inflight = true;
    try {
      await current.refresh();
    } catch (error) {
      console.error(error);
    } finally {
      inflight = false;
    }
  }
  if (mine !== generation) return;
  timer = setTimeout(() => poll(mine), current.interval || 2000);
}

function askForKey(message) {
  const dialog = document.getElementById("key-dialog");
  const error = document.getElementById("key-error");
  error.hidden = !message;
  error.textContent = message || "";
  if (!dialog.open) dialog.showModal();
}

async function start() {
  setupSend();
  // A 403 says why (the apps' signing key given, or no operator key configured).
  onUnauthorized((status, message) => askForKey(!hasToken() ? "" : status === 403 ? message : "That key was refused."));
  document.getElementById("key-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const input = document.getElementById("key-input");
    try {
      await useKey(input.value);
      // An operator route: refused with a 401 for a wrong key, a 403 for the apps' signing key.
      await get("/v1/dead-letters?limit=1");
      input.value = "";
      document.getElementById("key-dialog").close();
      route();
    } catch (err) {
      forgetToken();
      askForKey(err.status === 401 ? "That key was refused." : err.message);
    }
  });
  window.addEventListener("hashchange", route);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && !inflight) {
      clearTimeout(timer);
      poll(generation);
    }
  });
  // The view asks for its data at once; where the page is connected is told when /health answers.
  route();
  const mode = document.getElementById("mode");
  let health = { mode: "dev" };
  try {
    health = await get("/health");
  } catch {
    /* shown by the views */
  }
  if (health.mode === "dev") {
    replace(mode, h("span", { class: "dot" }), "dev mode · no auth");
    mode.title = "stepline dev: no event keys, no signatures, no API auth";
  } else {
    replace(mode, h("span", { class: "dot ok" }), "deployed", " ", h("button", {
      type: "button", class: "link", id: "forget-key", onclick: () => { forgetToken(); askForKey(); },
    }, "change key"));
  }
  if (health.mode !== "dev" && !hasToken()) askForKey();
}

start();
