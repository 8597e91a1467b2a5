// The console's CRM pages as DOM: record lists, record pages, call history. No state and
// no requests here: console.js passes data in and handlers (`dial`, `play`) down.

import { directionOf, formatNumber, formatTalk, initials } from "./calls.js";
import { recordingNote } from "./cardview.js";
import { fieldLabel, objectLabel } from "./screenpop.js";
import { dayAndTime, h, icon } from "./ui.js";

export const OBJECTS = [
  { name: "Contact", plural: "Contacts" },
  { name: "Lead", plural: "Leads" },
  { name: "Account", plural: "Accounts" },
];

/** The console address of a record page. */
export function recordPath(object, id) {
  return `/console/records/${encodeURIComponent(object)}/${encodeURIComponent(id)}`;
}

/** The console address of an object's list (optionally searched). */
export function listPath(object, query = "") {
  const params = new URLSearchParams({ object });
  if (query) params.set("q", query);
  return `/console?${params}`;
}

export function pluralOf(object) {
  return OBJECTS.find((o) => o.name === object)?.plural ?? `${objectLabel(object)}s`;
}

const FIELD_ORDER = [
  "first_name",
  "last_name",
  "title",
  "company",
  "account_id",
  "email",
  "phone",
  "mobile_phone",
  "other_phone",
  "website",
  "industry",
  "city",
  "status",
];
const HIDDEN_FIELDS = new Set(["id", "tenant_id", "name", "created_at", "updated_at",
  "last_activity_at"]);
const LABELS = {
  first_name: "First name",
  last_name: "Last name",
  account_id: "Account",
  city: "City",
};

export function isPhoneField(name) {
  return /phone/i.test(name);
}

function labelOf(name) {
  if (LABELS[name]) return LABELS[name];
  if (isPhoneField(name)) return fieldLabel(name);
  const words = name.replace(/([a-z])([A-Z])/g, "$1 $2").replace(/_/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** A record's fields in reading order: [[name, value]] without bookkeeping and blanks. */
export function orderedFields(fields) {
  const names = Object.keys(fields ?? {}).filter((name) => !HIDDEN_FIELDS.has(name));
  const rank = (name) => {
    const at = FIELD_ORDER.indexOf(name);
    return at < 0 ? FIELD_ORDER.length : at;
  };
  names.sort((a, b) => rank(a) - rank(b));
  return names
    .map((name) => [name, fields[name]])
    .filter(([, value]) => value !== null && value !== undefined && value !== "");
}

/** The phone numbers of a record: [{field, number}]. */
export function phonesOf(record) {
  return orderedFields(record.fields)
    .filter(([name, value]) => isPhoneField(name) && typeof value === "string")
    .map(([field, number]) => ({ field, number }));
}

export function avatarOf(record, size = "") {
  const letters = record.object === "Account" ? "" : initials(record.name);
  return h(
    "span",
    {
      class: `crm-avatar${size ? ` crm-avatar--${size}` : ""}`,
      data: { object: record.object },
      attrs: { "aria-hidden": "true" },
    },
    letters || icon(record.object === "Account" ? "building" : "user"),
  );
}

/** A phone number the agent can click to call (`dial(number)` does the calling). */
export function dialLink(number, home, dial, { label = null } = {}) {
  return h(
    "a",
    {
      class: "dial",
      href: `tel:${number.replace(/[^\d+]/g, "")}`,
      title: label ? `Call ${label}: ${number}` : `Call ${number}`,
      data: { testid: "dial-link", number },
      on: {
        click: (event) => {
          event.preventDefault();
          dial(number);
        },
      },
    },
    icon("phone"),
    h("span", { text: formatNumber(number, home) }),
  );
}

function nav(href, props, ...children) {
  return h("a", { ...props, href, data: { ...(props.data ?? {}), nav: "" } }, ...children);
}

// -- lists ---------------------------------------------------------------------------------

function companyOf(record) {
  const f = record.fields ?? {};
  if (record.object === "Account") return [f.industry, f.city].filter(Boolean).join(" · ");
  return record.account_name || f.company || "";
}

/** One row of a record list. */
export function recordRow(record, { home, dial, now }) {
  const phones = phonesOf(record);
  const first = phones[0];
  const last = record.last_activity_at;
  return h(
    "tr",
    { data: { testid: "record-row", recordId: record.id } },
    h(
      "td",
      {},
      nav(
        recordPath(record.object, record.id),
        { class: "record-link", data: { testid: "record-link" } },
        avatarOf(record, "small"),
        h(
          "span",
          { class: "record-link__text" },
          h("span", { class: "record-link__name", text: record.name }),
          record.fields?.title
            ? h("span", { class: "record-link__sub", text: record.fields.title })
            : null,
        ),
      ),
    ),
    h("td", { class: "muted-cell", text: companyOf(record) }),
    h(
      "td",
      {},
      first ? dialLink(first.number, home, dial, { label: record.name }) : null,
      phones.length > 1
        ? h("span", { class: "more-phones", text: ` +${phones.length - 1}` })
        : null,
    ),
    h("td", { class: "muted-cell", text: record.fields?.email ?? "" }),
    h("td", { class: "num muted-cell", text: last ? dayAndTime(last, now) : "—" }),
  );
}

// -- a record ------------------------------------------------------------------------------

function fieldValue(record, name, value, { home, dial }) {
  if (isPhoneField(name) && typeof value === "string") {
    return dialLink(value, home, dial, { label: record.name });
  }
  if (name === "account_id") {
    return nav(recordPath("Account", value), { class: "text-link" }, record.account_name ?? value);
  }
  if (name === "email") return h("a", { class: "text-link", href: `mailto:${value}`, text: value });
  if (name === "website" && /^https?:\/\//.test(value)) {
    return h("a", {
      class: "text-link",
      href: value,
      text: value.replace(/^https?:\/\/(www\.)?/, ""),
      attrs: { target: "_blank", rel: "noopener noreferrer" },
    });
  }
  return String(value);
}

/** The record's fields as a description list. */
export function detailsList(record, ctx) {
  const rows = orderedFields(record.fields).map(([name, value]) =>
    h(
      "div",
      { class: "details__row", data: { field: name } },
      h("dt", { text: labelOf(name) }),
      h("dd", {}, fieldValue(record, name, value, ctx)),
    ),
  );
  return h("dl", { class: "details", data: { testid: "record-fields" } }, rows);
}

/** "Call" for the main phone, "Call mobile" for the others. */
function callLabel(field) {
  return /^phone$/i.test(field) ? "Call" : `Call ${fieldLabel(field).toLowerCase()}`;
}

/** The record page's header: who, and a call button per number. */
export function recordHead(record, { home, dial }) {
  const f = record.fields ?? {};
  const sub = [f.title, record.account_name || f.company, f.industry, f.city].filter(Boolean);
  const calls = phonesOf(record).map(({ field, number }) =>
    h(
      "button",
      {
        class: "button button--small",
        type: "button",
        data: { testid: "call-button", number },
        on: { click: () => dial(number) },
      },
      icon("phone"),
      h("span", { text: callLabel(field) }),
    ),
  );
  return h(
    "header",
    { class: "record__head" },
    avatarOf(record, "large"),
    h(
      "div",
      { class: "record__who" },
      h(
        "div",
        { class: "record__kicker" },
        h("span", {
          class: "object-chip",
          data: { object: record.object },
          text: objectLabel(record.object),
        }),
      ),
      h("h1", { class: "record__name", data: { testid: "record-name" }, text: record.name }),
      sub.length ? h("p", { class: "record__sub", text: sub.join(" · ") }) : null,
    ),
    h("div", { class: "record__actions" }, calls),
  );
}

/** Our id of a recording link (`/api/recordings/<id>` on this server); null for a link
 *  elsewhere, which plays as it is. */
export function ourRecordingId(url, origin = window.location.origin) {
  let parsed;
  try {
    parsed = new URL(url, origin);
  } catch {
    return null;
  }
  const match = /^\/api\/recordings\/([^/]+)$/.exec(parsed.pathname);
  return parsed.origin === origin && match ? decodeURIComponent(match[1]) : null;
}

/** The recording part of an activity: a play button when `state` is "stored", else a note
 *  ("pending": not fetched yet; "failed": it never will be). `play(url, slot, button)`. */
export function activityRecording(url, state, slot, play) {
  if (state !== "stored") {
    return recordingNote(state, { className: "activity__recording-note", testid: "recording-state" });
  }
  return h(
    "button",
    {
      class: "recording-link",
      type: "button",
      data: { testid: "recording-link", url },
      on: { click: (event) => play(url, slot, event.currentTarget) },
    },
    icon("play"),
    h("span", { text: "Play recording" }),
  );
}

/** One call in a record's history. `agents`: agent id → name; `play(url, slot)`;
 *  `recordingState(url)`: "stored" (or a link not ours), "pending" or "failed". */
export function activityRow(activity, { agents, now, play, recordingState = () => "stored" }) {
  const direction = directionOf({ direction: String(activity.call_type ?? "").toLowerCase() });
  const missed = /missed|voicemail/i.test(activity.disposition ?? "");
  const talk = activity.duration_seconds > 0 ? formatTalk(activity.duration_seconds) : null;
  const agent = agents.get(activity.agent_id) ?? null;
  const meta = [activity.disposition, talk, agent].filter(Boolean).join(" · ");
  const slot = h("div", { class: "activity__media" });
  const url = activity.recording_url;
  const recording = url
    ? h(
        "div",
        { class: "activity__recording", data: { recordingUrl: url } },
        activityRecording(url, recordingState(url), slot, play),
      )
    : null;
  return h(
    "li",
    {
      class: `activity${missed ? " is-missed" : ""}`,
      data: { testid: "activity", callId: activity.call_id ?? "" },
    },
    h(
      "span",
      {
        class: `history-row__icon history-row__icon--${direction.key}`,
        attrs: { title: direction.label },
      },
      icon(direction.key),
    ),
    h(
      "div",
      { class: "activity__main" },
      h("div", { class: "activity__subject", text: activity.subject || `${direction.label} call` }),
      h("div", { class: "activity__meta", text: meta }),
      recording,
      slot,
    ),
    h("time", {
      class: "activity__when",
      text: activity.started_at ? dayAndTime(activity.started_at, now) : "",
      attrs: activity.started_at
        ? { datetime: new Date(activity.started_at * 1000).toISOString() }
        : {},
    }),
  );
}

/** An empty state (icon, title, text), in the softphone's style. */
export function emptyState(iconName, title, text, testid = null) {
  return h(
    "div",
    { class: "empty empty--quiet", data: testid ? { testid } : {} },
    h("span", { class: "empty__icon" }, icon(iconName)),
    h("p", { class: "empty__title", text: title }),
    text ? h("p", { class: "empty__text", text }) : null,
  );
}
