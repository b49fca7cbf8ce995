// The REST API, as this page calls it. Deployed, every call carries the operator key's hash as
// the bearer (the form the SDKs send the signing key in); the key itself is never stored or sent.

const TOKEN = "stepline.bearer";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

let unauthorized = () => {};

/** What to do when the API says 401 or 403 (ask for the key), given the API's message. */
export function onUnauthorized(callback) {
  unauthorized = callback;
}

export function hasToken() {
  return sessionStorage.getItem(TOKEN) !== null;
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN);
}

/** SHA-256 of the key's hex part: what `Authorization: Bearer` carries. */
export async function hashKey(raw) {
  const hex = raw.trim().replace(/^signkey-\w+-/, "");
  if (!/^([0-9a-fA-F]{2})+$/.test(hex)) {
    throw new Error("the operator key is hex digits");
  }
  const bytes = new Uint8Array(hex.match(/../g).map((pair) => parseInt(pair, 16)));
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export async function useKey(raw) {
  sessionStorage.setItem(TOKEN, await hashKey(raw));
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const token = sessionStorage.getItem(TOKEN);
  if (token) headers.Authorization = `Bearer ${token}`;
  const resp = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
  let data = null;
  try {
    data = await resp.json();
  } catch {
    data = null;
  }
  if (resp.status === 401 || resp.status === 403) unauthorized(resp.status, data && data.error);
  if (!resp.ok) throw new ApiError(resp.status, (data && data.error) || `${resp.status} ${resp.statusText}`);
  return data;
}

export const get = (path) => api("GET", path);
export const post = (path, body) => api("POST", path, body === undefined ? {} : body);
export const del = (path) => api("DELETE", path);

export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}
