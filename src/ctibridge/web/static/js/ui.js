// Small DOM helpers shared by the softphone and the admin view (no framework).

const SVG_NS = "http://www.w3.org/2000/svg";

/** Stroke icons on a 24×24 grid: each is a list of path `d` strings. */
const ICONS = {
  inbound: ["M17 7 7 17", "M7 9v8h8"],
  outbound: ["M7 17 17 7", "M9 7h8v8"],
  internal: ["M4 8h15", "M15 4l4 4-4 4", "M20 16H5", "M9 12l-4 4 4 4"],
  phone: [
    "M6.5 3.5h2.6l1.6 4.4-2 1.3a11.5 11.5 0 0 0 6.1 6.1l1.3-2 4.4 1.6v2.6a2 2 0 0 1-2.2 2 " +
      "16.5 16.5 0 0 1-13.8-13.8 2 2 0 0 1 2-2.2z",
  ],
  pause: ["M9 6v12", "M15 6v12"],
  signOut: ["M9 4H6a2 2 0 0 0-2 2v12a2 2 0 0 0 2 2h3", "M16 16l4-4-4-4", "M20 12H9"],
  user: ["M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8z", "M4.5 20a7.5 7.5 0 0 1 15 0"],
  refresh: ["M20 12a8 8 0 1 1-2.3-5.7", "M20 4v5h-5"],
  history: ["M12 7v5l3 2", "M3.5 12a8.5 8.5 0 1 0 2.5-6", "M3 4v4h4"],
  users: [
    "M9 11a3.5 3.5 0 1 0 0-7 3.5 3.5 0 0 0 0 7z",
    "M2.5 20a6.5 6.5 0 0 1 13 0",
    "M16 4.3a3.5 3.5 0 0 1 0 6.4",
    "M18 14a6.5 6.5 0 0 1 3.5 6",
  ],
  check: ["M5 12.5l4.5 4.5L19 7.5"],
  plus: ["M12 5v14", "M5 12h14"],
  search: ["M11 18a7 7 0 1 0 0-14 7 7 0 0 0 0 14z", "M20 20l-4-4"],
  open: ["M14 4h6v6", "M20 4l-9 9", "M18 14v4a2 2 0 0 1-2 2H6a2 2 0 0 1-2-2V8a2 2 0 0 1 2-2h4"],
  chevronRight: ["M9 6l6 6-6 6"],
  building: ["M4 20V6l8-3v17", "M12 9h8v11", "M2 20h20", "M8 9v.01", "M8 13v.01", "M16 13v.01"],
  play: ["M8 5.5v13l10.5-6.5z"],
  cloud: ["M7 18a4.5 4.5 0 0 1-.6-9A6 6 0 0 1 18 9.5a4.3 4.3 0 0 1-.5 8.5z"],
};

/** An inline SVG icon (decorative: hidden from assistive technology). */
export function icon(name, className = "icon") {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", className);
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  for (const d of ICONS[name] ?? []) {
    const path = document.createElementNS(SVG_NS, "path");
    path.setAttribute("d", d);
    svg.append(path);
  }
  return svg;
}

/**
 * Create an element: h("div", {class: "x", text: "hi", data: {testid: "t"}, attrs: {...},
 * on: {click: fn}}, child, ...). Strings become text nodes; null children are skipped.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  const { class: cls, text, data, attrs, on, ...rest } = props;
  if (cls) el.className = cls;
  if (text !== undefined && text !== null) el.textContent = text;
  for (const [key, value] of Object.entries(data ?? {})) el.dataset[key] = value;
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value !== null && value !== undefined && value !== false) el.setAttribute(key, value);
  }
  for (const [event, handler] of Object.entries(on ?? {})) el.addEventListener(event, handler);
  Object.assign(el, rest);
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) el.append(child);
  }
  return el;
}

/** Set text only when it changes (no needless layout or screen-reader chatter). */
export function setText(el, text) {
  const value = text ?? "";
  if (el.textContent !== value) el.textContent = value;
}

/** Set (or remove, for null) an attribute only when it changes. */
export function setAttr(el, name, value) {
  if (value === null || value === undefined) {
    if (el.hasAttribute(name)) el.removeAttribute(name);
  } else if (el.getAttribute(name) !== String(value)) {
    el.setAttribute(name, value);
  }
}

const STATUS_TEXT = {
  connecting: "Connecting…",
  connected: "Connected",
  reconnecting: "Reconnecting…",
  offline: "Offline",
  stopped: "Offline",
};

/** Show a connection status in the header pill. */
export function showStatus(pill, status) {
  pill.dataset.status = status;
  setText(pill.querySelector("[data-role=status-text]"), STATUS_TEXT[status] ?? status);
  pill.title = status === "connected" ? "Live updates are on" : "Live updates are paused";
}

/** "14:05" in the browser's time zone, for unix seconds. */
export function clockTime(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString([], { hour: "numeric", minute: "2-digit" });
}

/** "Today, 14:05" / "Mon 3 Nov, 14:05" for unix seconds, relative to `now`. */
export function dayAndTime(seconds, now) {
  const date = new Date(seconds * 1000);
  const today = new Date(now * 1000).toDateString() === date.toDateString();
  if (today) return clockTime(seconds);
  const day = date.toLocaleDateString([], { weekday: "short", day: "numeric", month: "short" });
  return `${day}, ${clockTime(seconds)}`;
}

/** Show one of a page's top-level views (elements with `data-view`), hide the others. */
export function showView(name) {
  for (const el of document.querySelectorAll("[data-view]")) el.hidden = el.dataset.view !== name;
}

/** Announce a message to screen readers through an aria-live region. */
export function announce(region, message) {
  region.textContent = "";
  // A fresh text node after clearing makes repeated messages be read again.
  window.setTimeout(() => {
    region.textContent = message;
  }, 50);
}

/** Replace every `<span data-icon="name">` placeholder under `root` with its SVG. */
export function fillIcons(root = document) {
  for (const slot of root.querySelectorAll("[data-icon]")) {
    slot.replaceWith(icon(slot.dataset.icon, slot.className || "icon"));
  }
}
