// The REST API and the sign-in token: fetch with a bearer token, JSON errors as ApiError.

/** An error answer from the server ({error_id, message, details}) or a network failure. */
export class ApiError extends Error {
  constructor(status, errorId, message, details = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.errorId = errorId;
    this.details = details;
  }

  /** The token is missing, unknown, revoked or expired. */
  get unauthenticated() {
    return this.status === 401;
  }

  /** The server could not be reached at all. */
  get offline() {
    return this.status === 0;
  }
}

/** Where a page keeps its token across reloads. */
export class TokenStore {
  constructor(key, storage = window.localStorage) {
    this.key = key;
    this.storage = storage;
  }

  get() {
    try {
      return this.storage.getItem(this.key);
    } catch {
      return null;
    }
  }

  set(token) {
    try {
      this.storage.setItem(this.key, token);
    } catch {
      // Private mode or storage disabled: the token lives as long as the page.
    }
  }

  clear() {
    try {
      this.storage.removeItem(this.key);
    } catch {
      // Nothing stored.
    }
  }
}

/** The `key=value&...` pairs of an address fragment, in order (no "+" → space rewriting). */
export function fragmentPairs(hash) {
  return hash
    .replace(/^#/, "")
    .split("&")
    .filter(Boolean)
    .map((part) => {
      const at = part.indexOf("=");
      const key = at < 0 ? part : part.slice(0, at);
      const value = at < 0 ? "" : part.slice(at + 1);
      try {
        return [decodeURIComponent(key), decodeURIComponent(value)];
      } catch {
        return [key, value];
      }
    });
}

/**
 * A `#token=...` in the address (the demo prints such links): returns it and removes it
 * from the address bar (and so from the history), keeping any other fragment keys.
 */
export function takeTokenFromFragment(loc = window.location, hist = window.history) {
  const pairs = fragmentPairs(loc.hash);
  const token = pairs.find(([key]) => key === "token")?.[1];
  if (!token) return null;
  const rest = pairs
    .filter(([key]) => key !== "token")
    .map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(value)}`)
    .join("&");
  hist.replaceState(hist.state, "", `${loc.pathname}${loc.search}${rest ? `#${rest}` : ""}`);
  return token;
}

function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params ?? {})) {
    if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

async function errorFrom(response) {
  let body = {};
  try {
    body = await response.json();
  } catch {
    // Not JSON (a proxy's error page, say).
  }
  const message = body.message || response.statusText || `HTTP ${response.status}`;
  return new ApiError(response.status, body.error_id || `http-${response.status}`, message, body.details);
}

/** The ctibridge REST API, authenticated with the token in `tokens`. */
export class Api {
  constructor(tokens, base = "") {
    this.tokens = tokens;
    this.base = base;
  }

  async request(method, path, { params, body } = {}) {
    const headers = { Accept: "application/json" };
    const token = this.tokens.get();
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(`${this.base}${path}${query(params)}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
      });
    } catch (exc) {
      throw new ApiError(0, "network", "The server cannot be reached.", { cause: String(exc) });
    }
    if (!response.ok) throw await errorFrom(response);
    return response.status === 204 ? null : response.json();
  }

  /** POST /api/session → {token, agent}; the token is stored. */
  async signIn(login, password) {
    const result = await this.request("POST", "/api/session", { body: { login, password } });
    this.tokens.set(result.token);
    return result;
  }

  /** DELETE /api/session (best effort) and forget the token. */
  async signOut() {
    try {
      if (this.tokens.get()) await this.request("DELETE", "/api/session");
    } finally {
      this.tokens.clear();
    }
  }

  me() {
    return this.request("GET", "/api/me");
  }

  /** GET /api/calls → {items, next_cursor}; `params`: since, limit, cursor, direction, ... */
  calls(params) {
    return this.request("GET", "/api/calls", { params });
  }

  /** GET /api/agents?tenant= (admins) → {items}. */
  agents(tenant) {
    return this.request("GET", "/api/agents", { params: { tenant } });
  }

  /** GET /api/directory → {items: [{agent_id, name, extension}]} (the signed-in tenant). */
  directory() {
    return this.request("GET", "/api/directory");
  }

  /** GET /api/recordings/{id}/state → {recording_id, state}: can it be played yet. */
  recordingState(recordingId) {
    return this.request("GET", `/api/recordings/${encodeURIComponent(recordingId)}/state`);
  }

  // -- CRM and call control ------------------------------------------------------------

  /** GET /api/crm/records/{object} → {items, next_cursor}; `params`: q, limit, cursor. */
  records(object, params) {
    return this.request("GET", `/api/crm/records/${encodeURIComponent(object)}`, { params });
  }

  /** GET /api/crm/records/{object}/{id} → the record with `fields` and `activities`. */
  record(object, id) {
    const path = `/api/crm/records/${encodeURIComponent(object)}/${encodeURIComponent(id)}`;
    return this.request("GET", path);
  }

  /** POST /api/crm/records/{object}: with `callId`, that call's log goes to the new record. */
  createRecord(object, fields, callId = null) {
    const body = callId ? { fields, call_id: callId } : { fields };
    return this.request("POST", `/api/crm/records/${encodeURIComponent(object)}`, { body });
  }

  /** PUT /api/calls/{id}/record: the agent chose (or opened) this record for the call. */
  chooseRecord(callId, record) {
    const body = { object: record.object, id: record.id };
    return this.request("PUT", `/api/calls/${encodeURIComponent(callId)}/record`, { body });
  }

  /** POST /api/calls (click-to-dial) → {request_id}; `record`: where the click came from. */
  placeCall(number, record = null) {
    const body = record ? { number, record: { object: record.object, id: record.id } } : { number };
    return this.request("POST", "/api/calls", { body });
  }

  /** The WebSocket address for the current token. */
  socketUrl() {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    const token = encodeURIComponent(this.tokens.get() ?? "");
    return `${scheme}//${window.location.host}${this.base}/ws?token=${token}`;
  }
}
