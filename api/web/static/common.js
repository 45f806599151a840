// Shared by every page: the API key prompt, authenticated fetch, formatting, small DOM helpers.
// The key lives in this tab's sessionStorage and only ever travels in the Authorization header.
"use strict";

const KEY_STORE = "envirostream.apiKey";
const OPERATOR_STORE = "envirostream.operator";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "className") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function apiKey() {
  return sessionStorage.getItem(KEY_STORE);
}

class AuthError extends Error {}

// fetch() against the API with the key; a 401/403 clears the key and shows the prompt.
async function api(path, options) {
  const key = apiKey();
  if (!key) {
    showKeyPrompt("Enter an API key to see this page.");
    throw new AuthError("no API key");
  }
  const opts = Object.assign({}, options || {});
  opts.headers = Object.assign({ Authorization: "Bearer " + key }, opts.headers || {});
  const response = await fetch(path, opts);
  if (response.status === 401) {
    // Missing, unknown or revoked key: ask for another. (403, a scope too small, and 429
    // are shown as errors: the key itself is fine.)
    const body = await response.text();
    sessionStorage.removeItem(KEY_STORE);
    showKeyPrompt("401: " + errorText(body));
    throw new AuthError(body);
  }
  if (!response.ok) {
    throw new Error(response.status + " " + path.split("?")[0] + ": " + errorText(await response.text()));
  }
  return response;
}

async function apiJson(path, options) {
  return (await api(path, options)).json();
}

function errorText(body) {
  try {
    const parsed = JSON.parse(body);
    const detail = parsed.detail !== undefined ? parsed.detail : parsed;
    return typeof detail === "string" ? detail : JSON.stringify(detail);
  } catch (_) {
    return body.slice(0, 200);
  }
}

let onKeyChange = () => {};

// The page's entry point: run `start` now if a key is stored, else once one is entered.
function withKey(start) {
  onKeyChange = start;
  const form = document.getElementById("key-form");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const input = document.getElementById("key-input");
    const value = input.value.trim();
    if (!value) return;
    sessionStorage.setItem(KEY_STORE, value);
    input.value = "";
    hideKeyPrompt();
    onKeyChange();
  });
  document.getElementById("sign-out").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_STORE);
    window.location.reload();
  });
  if (apiKey()) {
    hideKeyPrompt();
    start();
  } else {
    showKeyPrompt("Enter an API key (envirostream keys create --tenant T --scope operate --name N).");
  }
}

function showKeyPrompt(message) {
  document.getElementById("key-message").textContent = message;
  document.getElementById("key-prompt").hidden = false;
  document.getElementById("sign-out").hidden = !apiKey();
  document.getElementById("key-input").focus();
}

function hideKeyPrompt() {
  document.getElementById("key-prompt").hidden = true;
  document.getElementById("sign-out").hidden = false;
}

function showError(error) {
  if (error instanceof AuthError) return;
  const box = document.getElementById("error");
  box.textContent = String(error.message || error);
  box.hidden = false;
}

function clearError() {
  document.getElementById("error").hidden = true;
}

function fmtTime(ms) {
  if (ms === null || ms === undefined) return "";
  return new Date(ms).toISOString().replace("T", " ").slice(0, 19) + "Z";
}

function fmtAgo(ms) {
  if (ms === null || ms === undefined) return "never";
  const s = Math.round((Date.now() - ms) / 1000);
  if (s < 60) return s + " s ago";
  if (s < 3600) return Math.round(s / 60) + " min ago";
  if (s < 86400) return Math.round(s / 3600) + " h ago";
  return Math.round(s / 86400) + " d ago";
}

function badge(kind, value) {
  return el("span", { className: "badge " + kind + "-" + String(value).toLowerCase(), text: value });
}

function deviceLink(deviceId) {
  return el("a", { href: "/devices/" + encodeURIComponent(deviceId), text: deviceId });
}
