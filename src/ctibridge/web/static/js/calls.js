// Call-card logic with no DOM and no clock of its own: callers pass `now` (unix seconds,
// server clock). Everything here is a pure function of its arguments.

/** How long an ended (or handed-over) card stays on screen before it moves to history. */
export const LINGER_MS = 4000;

/** States in which a card belongs in the live area (the rest linger, then go to history). */
const LIVE_KINDS = new Set(["ringing", "dialling", "connected", "held"]);

// -- phone numbers ------------------------------------------------------------------------

const ONE_DIGIT_CODES = new Set(["1", "7"]);
const TWO_DIGIT_CODES = new Set(
  ("20 27 30 31 32 33 34 36 39 40 41 43 44 45 46 47 48 49 51 52 53 54 55 56 57 58 " +
    "60 61 62 63 64 65 66 81 82 84 86 90 91 92 93 94 95 98").split(" "),
);

/** Country calling code of the place an agent works, guessed from a tz database name. */
const ZONE_CODES = {
  "Europe/London": "44",
  "Europe/Belfast": "44",
  "Europe/Jersey": "44",
  "Europe/Guernsey": "44",
  "Europe/Isle_of_Man": "44",
  "Europe/Dublin": "353",
  "Europe/Paris": "33",
  "Europe/Berlin": "49",
  "Europe/Madrid": "34",
  "Europe/Rome": "39",
  "Europe/Amsterdam": "31",
  "Europe/Brussels": "32",
  "Europe/Zurich": "41",
  "Europe/Vienna": "43",
  "Europe/Stockholm": "46",
  "Europe/Oslo": "47",
  "Europe/Copenhagen": "45",
  "America/New_York": "1",
  "America/Chicago": "1",
  "America/Denver": "1",
  "America/Phoenix": "1",
  "America/Los_Angeles": "1",
  "America/Anchorage": "1",
  "America/Toronto": "1",
  "America/Vancouver": "1",
  "America/Edmonton": "1",
  "America/Winnipeg": "1",
  "America/Halifax": "1",
  "Pacific/Honolulu": "1",
  "Australia/Sydney": "61",
  "Australia/Melbourne": "61",
  "Australia/Brisbane": "61",
  "Australia/Perth": "61",
  "Australia/Adelaide": "61",
  "Australia/Hobart": "61",
  "Australia/Darwin": "61",
};

/** Countries whose national form starts with a trunk prefix 0. */
const TRUNK_ZERO = new Set(["44", "353", "61", "33", "49", "34", "31", "32", "41", "43", "46", "47"]);

/** Calling code for a tz name (e.g. "Europe/London" → "44"), or null when unknown. */
export function homeCountry(timezone) {
  return ZONE_CODES[timezone] ?? null;
}

/** Split an international number (digits only, no +) into [country code, national number]. */
export function splitInternational(digits) {
  if (ONE_DIGIT_CODES.has(digits.slice(0, 1))) return [digits.slice(0, 1), digits.slice(1)];
  if (TWO_DIGIT_CODES.has(digits.slice(0, 2))) return [digits.slice(0, 2), digits.slice(2)];
  return [digits.slice(0, 3), digits.slice(3)];
}

function chunk(digits, sizes) {
  const out = [];
  let at = 0;
  for (const size of sizes) {
    out.push(digits.slice(at, at + size));
    at += size;
  }
  return out;
}

function genericGroups(digits) {
  // Threes, with fours at the end rather than a lonely digit or two: 8 → 4 4, 10 → 3 3 4.
  const n = digits.length;
  if (n <= 4) return [digits];
  if (n === 5) return chunk(digits, [2, 3]);
  const fours = n % 3 === 0 ? 0 : n % 3 === 1 ? 1 : 2;
  const threes = (n - 4 * fours) / 3;
  return chunk(digits, [...Array(threes).fill(3), ...Array(fours).fill(4)]);
}

function ukGroups(nsn) {
  if (nsn.length !== 10) return genericGroups(nsn);
  if (nsn.startsWith("7")) return chunk(nsn, [4, 6]);
  if (nsn.startsWith("2")) return chunk(nsn, [2, 4, 4]);
  if (/^1(1\d|\d1)/.test(nsn)) return chunk(nsn, [3, 3, 4]);
  if (nsn.startsWith("1")) return chunk(nsn, [4, 6]);
  return chunk(nsn, [3, 3, 4]);
}

function australianGroups(nsn) {
  if (nsn.length !== 9) return genericGroups(nsn);
  return nsn.startsWith("4") ? chunk(nsn, [3, 3, 3]) : chunk(nsn, [1, 4, 4]);
}

function irishGroups(nsn) {
  if (nsn.startsWith("8") && nsn.length === 9) return chunk(nsn, [2, 3, 4]);
  return genericGroups(nsn);
}

const GROUPERS = { 44: ukGroups, 61: australianGroups, 353: irishGroups };

function nanpNational(nsn) {
  return nsn.length === 10 ? `(${nsn.slice(0, 3)}) ${nsn.slice(3, 6)}-${nsn.slice(6)}` : nsn;
}

function nanpInternational(nsn) {
  return nsn.length === 10 ? `+1 ${nsn.slice(0, 3)}-${nsn.slice(3, 6)}-${nsn.slice(6)}` : `+1 ${nsn}`;
}

/** An international number laid out for reading: national form at home, else +CC form. */
function layout(cc, nsn, home) {
  if (cc === "1") return home === "1" ? nanpNational(nsn) : nanpInternational(nsn);
  const groups = (GROUPERS[cc] ?? genericGroups)(nsn);
  if (cc === home && TRUNK_ZERO.has(cc)) return `0${groups.join(" ")}`;
  if (cc === home) return groups.join(" ");
  return `+${cc} ${groups.join(" ")}`;
}

/** Digits of an international number, or null when `raw` is not one (given the home country). */
function toInternational(raw, home) {
  // "+44 (0)113 496 0215": the (0) is the trunk prefix, not part of the number.
  const compact = raw.replace(/\(0\)/g, "").replace(/[\s().-]/g, "");
  if (/^\+\d{6,15}$/.test(compact)) return compact.slice(1);
  if (/^00\d{6,15}$/.test(compact)) return compact.slice(2);
  if (home && TRUNK_ZERO.has(home) && /^0[1-9]\d{6,12}$/.test(compact)) {
    return home + compact.slice(1);
  }
  if (home === "1" && /^1?\d{10}$/.test(compact)) return `1${compact.slice(-10)}`;
  return null;
}

/** Whether a number is an internal extension (a few digits). */
export function isExtension(raw) {
  return typeof raw === "string" && /^\d{2,6}$/.test(raw);
}

/**
 * A phone number as people read it: "07700 900123" at home in the UK, "+61 491 570 156"
 * from abroad, "Ext. 102" for an extension, "Unknown number" when there is none.
 */
export function formatNumber(raw, home = null) {
  if (raw === null || raw === undefined || String(raw).trim() === "") return "Unknown number";
  const text = String(raw).trim();
  if (/^(anonymous|unknown|private|restricted|withheld)$/i.test(text)) return "Withheld number";
  if (isExtension(text)) return `Ext. ${text}`;
  const digits = toInternational(text, home);
  if (digits === null) return text;
  const [cc, nsn] = splitInternational(digits);
  return layout(cc, nsn, home);
}

// -- durations and times ------------------------------------------------------------------

/** Seconds as "mm:ss", or "h:mm:ss" from an hour on. Negative or missing → "00:00". */
export function formatDuration(seconds) {
  const total = Number.isFinite(seconds) && seconds > 0 ? Math.floor(seconds) : 0;
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const pad = (n) => String(n).padStart(2, "0");
  return h > 0 ? `${h}:${pad(m)}:${pad(s)}` : `${pad(m)}:${pad(s)}`;
}

/** A talk time for lists: "45s", "3m 12s", "1h 02m"; "—" when there was none. */
export function formatTalk(seconds) {
  const total = Number.isFinite(seconds) ? Math.round(seconds) : 0;
  if (total <= 0) return "—";
  if (total < 60) return `${total}s`;
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  if (h > 0) return `${h}h ${String(m).padStart(2, "0")}m`;
  return `${m}m ${String(total % 60).padStart(2, "0")}s`;
}

/** Unix seconds of the local midnight that starts the day holding `now` (unix seconds). */
export function startOfDay(now) {
  const day = new Date(now * 1000);
  day.setHours(0, 0, 0, 0);
  return day.getTime() / 1000;
}

// -- whose call is it ---------------------------------------------------------------------

/** Whether the agent with extension `ext` placed the call (admins: outbound calls only). */
export function isOriginator(card, ext) {
  if (card.direction === "outbound") return true;
  return Boolean(ext) && card.direction === "internal" && card.from_number === ext;
}

/** The other side of the call for the agent `ext`: {name, number}. */
export function remoteParty(card, ext) {
  const from = { name: card.from_name || null, number: card.from_number || card.remote_number };
  const to = { name: card.to_name || null, number: card.to_number || card.remote_number };
  if (card.direction === "outbound") return to;
  if (card.direction === "internal" && ext && card.from_number === ext) return to;
  return from;
}

const DIRECTIONS = {
  inbound: { key: "inbound", label: "Inbound" },
  outbound: { key: "outbound", label: "Outbound" },
  internal: { key: "internal", label: "Internal" },
};

/** {key, label} of the call's direction. */
export function directionOf(card) {
  return DIRECTIONS[card.direction] ?? DIRECTIONS.inbound;
}

function lastTransfer(card, test) {
  const transfers = card.transfers ?? [];
  for (let i = transfers.length - 1; i >= 0; i -= 1) {
    if (test(transfers[i])) return transfers[i];
  }
  return null;
}

/** The agent has left a call that goes on (transferred it, or someone else picked it up). */
function handedOver(card, ext) {
  if (!ext || (card.state !== "answered" && card.state !== "held")) return null;
  const current = card.current ?? [];
  if (current.length === 0 || current.includes(ext)) return null;
  const transfer = lastTransfer(card, (t) => t.from === ext);
  if (transfer) return { badge: "Transferred", note: `Transferred to ${transfer.to ?? "another line"}` };
  if ((card.agents ?? []).includes(ext)) return { badge: "Left call", note: `Now with ${current.join(", ")}` };
  const by = card.answered_by ?? current[0];
  return { badge: "Answered elsewhere", note: `Answered by ${by}` };
}

/** Rung as a transfer target on a call someone else already answered. */
function offeredTransfer(card, ext) {
  if (!ext || card.state !== "answered") return false;
  const inCall = (card.agents ?? []).includes(ext) || (card.current ?? []).includes(ext);
  return (card.rung ?? []).includes(ext) && !inCall;
}

/** Extra lines under the party: who answered, transfers (from the agent's point of view). */
export function notesOf(card, ext) {
  const notes = [];
  if (card.answered_by && card.answered_by !== ext && card.state !== "ringing") {
    notes.push(`Answered by ${card.answered_by}`);
  }
  for (const t of card.transfers ?? []) {
    if (ext && t.to === ext) notes.push(`Transferred from ${t.from ?? "another line"}`);
    else if (ext && t.from === ext) notes.push(`Transferred to ${t.to ?? "another line"}`);
    else notes.push(`Transferred ${t.from ?? "?"} → ${t.to ?? "?"}`);
  }
  return notes;
}

/**
 * How the outcome of a call reads for the agent `ext` (null: an admin's neutral view):
 * {label, tone} with tone "missed" (red), "ok", "muted" or "live".
 */
export function outcomeOf(card, ext) {
  if (card.state !== "ended") {
    const away = handedOver(card, ext);
    return away ? { label: away.note, tone: "muted" } : { label: "In progress", tone: "live" };
  }
  const mine = isOriginator(card, ext);
  const reason = card.end_reason;
  if (reason === "voicemail") {
    return mine ? { label: "Voicemail", tone: "muted" } : { label: "Missed · voicemail", tone: "missed" };
  }
  if (card.missed && !mine) return { label: "Missed", tone: "missed" };
  if (reason === "busy") return { label: "Busy", tone: "muted" };
  if (reason === "rejected") return { label: "Declined", tone: "muted" };
  if (reason === "failed") return { label: "Failed", tone: "missed" };
  if (reason === "no_answer") return { label: "No answer", tone: "muted" };
  if (reason === "transferred") return { label: "Merged by transfer", tone: "muted" };
  const transfer = ext ? lastTransfer(card, (t) => t.from === ext) : null;
  if (transfer) return { label: `Transferred to ${transfer.to ?? "another line"}`, tone: "ok" };
  if (ext && card.answered_by && !(card.agents ?? []).includes(ext)) {
    return { label: `Answered by ${card.answered_by}`, tone: "muted" };
  }
  return { label: card.direction === "outbound" ? "Connected" : "Answered", tone: "ok" };
}

/**
 * What the card shows for the agent `ext`: {kind, badge, tone}. Kinds: ringing, dialling,
 * connected, held (live), away (the agent left a call that goes on) and ended.
 */
export function viewOf(card, ext) {
  if (card.state === "ended") {
    const outcome = outcomeOf(card, ext);
    const badge = outcome.tone === "ok" ? "Ended" : outcome.label.split(" · ")[0];
    return { kind: "ended", badge, tone: outcome.tone === "missed" ? "missed" : "ended" };
  }
  const away = handedOver(card, ext);
  if (away) return { kind: "away", badge: away.badge, tone: "ended" };
  if (offeredTransfer(card, ext)) return { kind: "ringing", badge: "Ringing", tone: "ringing" };
  if (card.state === "new" && !isOriginator(card, ext)) {
    return { kind: "dialling", badge: "Incoming", tone: "dialling" };
  }
  if (card.state === "new" || (card.state === "ringing" && isOriginator(card, ext))) {
    return { kind: "dialling", badge: "Calling", tone: "dialling" };
  }
  if (card.state === "ringing") return { kind: "ringing", badge: "Ringing", tone: "ringing" };
  if (card.state === "held") return { kind: "held", badge: "On hold", tone: "held" };
  return { kind: "connected", badge: "Connected", tone: "connected" };
}

/** Whether a view belongs in the live area. */
export function isLive(view) {
  return LIVE_KINDS.has(view.kind);
}

/**
 * The timer of a card at `now`: ringing counts from `started_at`, a connected call from
 * `answered_at`; an ended call is frozen at its length.
 */
export function timerSeconds(card, now) {
  const start = card.answered_at ?? card.started_at;
  if (start === null || start === undefined) return 0;
  const end = card.state === "ended" && card.ended_at ? card.ended_at : now;
  return Math.max(0, end - start);
}

/** The newer of two versions of one call (by `seq`); `known` may be undefined. */
export function newer(known, card) {
  if (!known) return card;
  return (card.seq ?? 0) >= (known.seq ?? 0) ? card : known;
}

/** Cards newest first (by start time, then id), at most `limit`. */
export function newestFirst(cards, limit = Infinity) {
  const sorted = [...cards].sort(
    (a, b) => (b.started_at ?? 0) - (a.started_at ?? 0) || String(b.call_id).localeCompare(a.call_id),
  );
  return sorted.slice(0, limit);
}

/** Up to two initials of a person's name ("Sarah Mitchell" → "SM"), or "" for none. */
export function initials(name) {
  if (!name) return "";
  const words = name.replace(/[^\p{L}\p{N}\s'-]/gu, " ").split(/\s+/).filter(Boolean);
  if (words.length === 0) return "";
  const first = words[0][0];
  const last = words.length > 1 ? words[words.length - 1][0] : "";
  return (first + last).toUpperCase();
}
