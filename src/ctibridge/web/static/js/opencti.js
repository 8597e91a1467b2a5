// Salesforce Open CTI (Lightning): the softphone inside Salesforce's utility bar.
//
// Loaded by softphone.js only when Lightning framed us with `?mode=Lightning&
// sfdcIframeOrigin=...`. Salesforce's library comes from the org's own origin; it talks to
// Salesforce with postMessage (to `parent`) and calls back with {success, returnValue,
// errors}. What it does for the agent:
//   - click-to-dial on Salesforce phone numbers → POST /api/calls with the clicked record;
//   - an external call rings → the panel opens and Salesforce pops the caller: one match or
//     none by the org's softphone layout (searchAndScreenPop); several → Salesforce's search
//     page, while the card offers the same records to choose from;
//   - the agent opens a record during a call → that record gets the call log.

import { ConsoleTabHost } from "./crmlink.js";
import { salesforceOrigin } from "./softphone.js";

/** The Open CTI API version in the library's path. */
export const OPENCTI_VERSION = "57.0";
/** A ringing call waits this long for our CRM lookup before Salesforce searches anyway
 *  (the first card of a call comes before the lookup starts; until a lookup has been seen,
 *  the server may have no CRM at all, so the first wait is shorter). */
const LOOKUP_WAIT_MS = 4000;
const FIRST_LOOKUP_WAIT_MS = 1500;
const ON_CALL = new Set(["ringing", "connected", "held"]);
const LOAD_TIMEOUT_MS = 20000;
/** How long Salesforce may take to answer the first calls. */
const ANSWER_TIMEOUT_MS = 15000;

const IDLE_LABEL = "Softphone";

/** Where an org serves the Lightning Open CTI library. */
export function libraryUrl(origin, version = OPENCTI_VERSION) {
  return `${origin}/support/api/${version}/lightning/opencti_min.js`;
}

/** An Open CTI call that came back with `success: false`. */
export class OpenCtiError extends Error {
  constructor(method, errors) {
    const first = Array.isArray(errors) && errors.length ? errors[0] : null;
    const what = first ? `${first.code ?? "ERROR"}: ${first.description ?? ""}`.trim() : "failed";
    super(`${method} ${what}`);
    this.name = "OpenCtiError";
    this.method = method;
    this.errors = errors ?? [];
  }
}

/** Marks the errors that mean "Open CTI refused to start" (wrong frame or parameters). */
function refusal(message) {
  return Object.assign(new Error(message), { refused: true });
}

/**
 * Load the library with a <script>. The library throws a *string* when it refuses to start;
 * that is an error event of the window while the script runs (before its load event), and
 * for a script from another origin the browser hides what it said ("Script error.").
 */
export function loadLibrary(url, timeoutMs = LOAD_TIMEOUT_MS) {
  return new Promise((resolve, reject) => {
    let refused = null;
    const onError = (event) => {
      refused = typeof event.error === "string" ? event.error : event.message || "error";
      event.preventDefault();
    };
    const done = (error) => {
      window.removeEventListener("error", onError);
      clearTimeout(timer);
      if (error) reject(error);
      else resolve(window.sforce.opencti);
    };
    const timer = setTimeout(() => done(new Error("timed out loading Open CTI")), timeoutMs);
    window.addEventListener("error", onError);
    const script = document.createElement("script");
    script.src = url;
    script.async = true;
    script.addEventListener("error", () =>
      done(Object.assign(new Error(`could not load ${url}`), { loadFailed: true })),
    );
    script.addEventListener("load", () => {
      if (refused) done(refusal(refused));
      else if (!window.sforce?.opencti) done(new Error("the library defines no sforce.opencti"));
      else done(null);
    });
    document.head.append(script);
  });
}

/**
 * Call an Open CTI method with one argument object; resolves with its `returnValue`.
 * With `timeoutMs`, rejects when Salesforce has not answered by then.
 */
export function callOpenCti(api, method, args = {}, timeoutMs = 0) {
  return new Promise((resolve, reject) => {
    const timer = timeoutMs
      ? setTimeout(() => reject(new Error(`Salesforce did not answer ${method}`)), timeoutMs)
      : null;
    const callback = (response) => {
      clearTimeout(timer);
      if (response && response.success === true) resolve(response.returnValue ?? null);
      else reject(new OpenCtiError(method, response?.errors));
    };
    try {
      api[method]({ ...args, callback });
    } catch (exc) {
      clearTimeout(timer);
      reject(exc instanceof Error ? exc : new Error(String(exc)));
    }
  });
}

/** A record from an Open CTI payload (click-to-dial, navigation), or null. */
function payloadRecord(payload) {
  if (!payload?.recordId || !payload.objectType) return null;
  return { object: payload.objectType, id: payload.recordId, name: payload.recordName ?? "" };
}

export class OpenCtiHost {
  constructor(softphone) {
    this.softphone = softphone;
    this.origin = salesforceOrigin();
    this.api = null;
    this.shown = new Set(); // calls for which the panel was opened
    this.popped = new Set(); // calls Salesforce searched for
    this.waiting = new Map(); // call id → timer while our lookup is pending
    this.label = null;
  }

  async start() {
    document.body.dataset.host = "salesforce";
    this.showStatus("connecting");
    try {
      this.api = await loadLibrary(libraryUrl(this.origin));
    } catch (exc) {
      this.failed(exc);
      return;
    }
    try {
      // A library that refused to start throws on the first call: it has nowhere to post.
      const ready = callOpenCti(this.api, "notifyInitializationComplete", {}, ANSWER_TIMEOUT_MS);
      await ready.catch((exc) => {
        throw exc instanceof OpenCtiError || exc.message.startsWith("Salesforce did not")
          ? exc
          : refusal(exc.message);
      });
      this.api.onClickToDial({ listener: (payload) => this.onClickToDial(payload) });
      this.api.onNavigationChange({ listener: (payload) => this.onNavigation(payload) });
      await callOpenCti(this.api, "enableClickToDial", {}, ANSWER_TIMEOUT_MS);
    } catch (exc) {
      this.failed(exc);
      return;
    }
    this.showStatus("ready");
    this.call("getAppViewInfo")
      .then((info) => this.onNavigation(info))
      .catch(() => {});
  }

  call(method, args = {}) {
    return callOpenCti(this.api, method, args);
  }

  showStatus(state) {
    const el = document.querySelector("[data-role=host-status]");
    if (el) {
      el.hidden = false;
      el.dataset.state = state;
      el.title = state === "ready" ? "Connected to Salesforce" : "Salesforce: not connected";
    }
  }

  failed(exc) {
    this.api = null;
    this.showStatus("failed");
    let why = `Open CTI did not start (${exc.message})`;
    if (exc.refused) why = "Salesforce did not accept this page (Open CTI could not start)";
    else if (exc.loadFailed) {
      why = `the Salesforce Open CTI library could not be loaded from ${this.origin}`;
    }
    this.softphone.banner(
      `Not connected to Salesforce: ${why}. Calls still show here, but screen pops and ` +
        "click-to-dial are off. Reload the Salesforce page; if it keeps happening, ask your " +
        "administrator to check the call center's adapter URL.",
    );
  }

  // -- Salesforce → us -----------------------------------------------------------------

  onClickToDial(payload) {
    if (!payload?.number) return;
    this.call("setSoftphonePanelVisibility", { visible: true }).catch(() => {});
    this.softphone.crm.dial(payload.number, payloadRecord(payload));
  }

  onNavigation(payload) {
    this.softphone.crm.recordViewed(payloadRecord(payload));
  }

  // -- us → Salesforce (CrmLink host) --------------------------------------------------

  get opensPicks() {
    return this.api !== null;
  }

  openRecord(record) {
    if (!this.api) {
      new ConsoleTabHost().openRecord(record); // Salesforce is out of reach: our console
      return;
    }
    const type = this.api.SCREENPOP_TYPE?.SOBJECT ?? "sobject";
    this.call("screenPop", { type, params: { recordId: record.id } }).catch((exc) =>
      this.softphone.toast(`Salesforce could not open ${record.name}: ${exc.message}`, "error"),
    );
  }

  /** An external call that rings for the agent opens the panel; once our lookup is in
   *  (or late), Salesforce searches the caller, even if the agent answered meanwhile. */
  onCard(card, view, plan) {
    if (!this.api) return;
    this.updateLabel();
    const id = card.call_id;
    if (card.direction === "internal" || !ON_CALL.has(view.kind)) {
      this.stopWaiting(id);
      return;
    }
    if (!this.shown.has(id)) {
      if (view.kind !== "ringing") return;
      this.shown.add(id);
      this.call("setSoftphonePanelVisibility", { visible: true }).catch(() => {});
    }
    if (this.popped.has(id)) return;
    if (plan.kind === "pending" || (plan.kind === "hidden" && !card.crm)) {
      const wait = this.softphone.crm.lookups ? LOOKUP_WAIT_MS : FIRST_LOOKUP_WAIT_MS;
      if (!this.waiting.has(id)) this.waiting.set(id, setTimeout(() => this.popAnyway(id), wait));
      return;
    }
    this.pop(card, plan);
  }

  stopWaiting(id) {
    clearTimeout(this.waiting.get(id));
    this.waiting.delete(id);
  }

  popAnyway(id) {
    this.waiting.delete(id);
    const entry = this.softphone.live.get(id);
    if (entry && ON_CALL.has(entry.state?.kind) && !this.popped.has(id)) {
      this.pop(entry.card, this.softphone.crm.plan(entry.card));
    }
  }

  /** Salesforce shows the caller: the record the agent already chose; for several
   *  matches, its search page; otherwise a search that pops by the softphone layout. */
  pop(card, plan) {
    const id = card.call_id;
    this.popped.add(id);
    this.stopWaiting(id);
    if (plan.kind === "chosen") {
      this.openRecord(plan.record);
      return;
    }
    const number = card.crm?.number ?? card.remote_number;
    if (!number) return;
    const matches = card.crm?.matches ?? [];
    if (matches.length > 1) {
      this.popSearchPage(number);
      return;
    }
    const types = this.api.CALL_TYPE ?? {};
    const callType = card.direction === "outbound" ? types.OUTBOUND : types.INBOUND;
    // One match: Salesforce pops it, and the navigation that follows is this call's.
    if (matches.length === 1) this.softphone.crm.expectNavigation(card.call_id, matches);
    this.call("searchAndScreenPop", {
      searchParams: number,
      callType: callType ?? card.direction,
      deferred: false,
      defaultFieldValues: { Phone: number },
    }).catch((exc) => this.softphone.toast(`Salesforce search failed: ${exc.message}`, "error"));
  }

  /**
   * Several records match: Salesforce opens its search results for the number, beside the
   * chooser on the card. `screenPop` with type SEARCH is the documented way to open that
   * page ("Top Results" for `searchString`, at least 3 characters), whatever the org's
   * softphone layout says. `searchAndScreenPop` is not used here: it pops by the layout's
   * rules for *its own* search, which may send several matches elsewhere (a Visualforce
   * page, a flow, nowhere) or, searching fewer objects than our lookup, find one record and
   * open it; that navigation would then count as the agent's choice. The call's log goes
   * only to a record the agent picks on the card or opens in Salesforce (onNavigationChange);
   * the search page itself is not a record, so opening it chooses nothing.
   */
  popSearchPage(number) {
    const searchString = String(number).trim();
    if (searchString.length < 3) return;
    const type = this.api.SCREENPOP_TYPE?.SEARCH ?? "search";
    this.call("screenPop", { type, params: { searchString } }).catch((exc) =>
      this.softphone.toast(`Salesforce could not show its search: ${exc.message}`, "error"),
    );
  }

  /** The utility bar's label says when a call rings or is on. */
  updateLabel() {
    const kinds = this.softphone.liveEntries().map(({ view }) => view?.kind);
    let label = IDLE_LABEL;
    if (kinds.includes("ringing")) label = "Incoming call";
    else if (kinds.some((kind) => ["connected", "held", "dialling"].includes(kind))) {
      label = "On a call";
    }
    if (label === this.label) return;
    this.label = label;
    this.call("setSoftphoneItemLabel", { label }).catch(() => {});
  }
}
