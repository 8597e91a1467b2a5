// The agent's CRM side of their calls, for one signed-in session: which record each call
// goes to (chosen, opened, navigated to, created with New, or dialled from), click-to-dial,
// and the *host* that shows records: a console tab (softphone alone), the console's main
// area, or Salesforce Lightning (Open CTI). The server keeps the association rules
// (services/call_log.py); this module only tells it what the agent did.

import { popPlan, recordRef, sameRecord } from "./screenpop.js";

/** How long after a click-to-dial its call may appear (the agent's phone rings first). */
const DIAL_WINDOW_S = 120;
const MATCH_DIGITS = 9;
/** A navigation this soon after we showed a record for a call belongs to that call. */
const EXPECT_S = 15;

const TALKING = new Set(["connected", "held"]);
const LIVE = new Set(["ringing", "dialling", "connected", "held"]);

/** The last few digits of a number, to recognise a dialled number on a call card. */
export function numberTail(raw) {
  const digits = String(raw ?? "").replace(/\D/g, "");
  return digits.length >= 6 ? digits.slice(-MATCH_DIGITS) : null;
}

/**
 * The call a CRM navigation belongs to: the agent's live external call, a connected (or
 * held) one before a ringing one, the newest first. `entries`: [{card, view}].
 */
export function focusCall(entries) {
  const external = entries.filter(
    ({ card, view }) => card.direction !== "internal" && LIVE.has(view.kind),
  );
  const rank = ({ view }) => (TALKING.has(view.kind) ? 0 : 1);
  external.sort(
    (a, b) => rank(a) - rank(b) || (b.card.started_at ?? 0) - (a.card.started_at ?? 0),
  );
  return external[0]?.card ?? null;
}

/** The softphone on its own: records open in the console, in one reused tab. */
export class ConsoleTabHost {
  openRecord(record) {
    const url = record.url || `/console/records/${record.object}/${encodeURIComponent(record.id)}`;
    window.open(url, "ctibridge-console");
  }
}

export class CrmLink {
  /**
   * `api`: the REST client; `entries()`: the live cards [{card, view}]; `toast(text, tone)`;
   * `changed(callId)`: redraw that call's card; `now()`: server time; `format(number)`.
   */
  constructor({ api, entries, toast, changed, now, format = (number) => number }) {
    this.api = api;
    this.format = format;
    this.entries = entries;
    this.toast = toast;
    this.changed = changed;
    this.now = now;
    this.host = new ConsoleTabHost();
    this.reset();
  }

  reset() {
    this.choices = new Map(); // call id → record ({object, id, name, url})
    this.dials = []; // click-to-dials whose call has not appeared: {tail, record, at}
    this.seen = new Set(); // call ids already looked at (new-call rules run once)
    this.lookups = false; // whether the server has looked a caller up (it has a CRM)
    this.viewing = null; // the record the agent has open in the host, if any
    this.expected = null; // {callId, records, until}: a navigation we caused for a call
  }

  setHost(host) {
    this.host = host;
  }

  plan(card) {
    return popPlan(card, this.choices.get(card.call_id) ?? null);
  }

  setChoice(callId, record) {
    if (record) this.choices.set(callId, recordRef(record));
    else this.choices.delete(callId);
    this.changed(callId);
    this.host.onChoice?.(callId);
  }

  // -- what the agent does ------------------------------------------------------------

  /** Tell the server the call's log goes to `record` (once per record and call). */
  async choose(callId, record) {
    const previous = this.choices.get(callId) ?? null;
    if (sameRecord(previous, record)) return true;
    this.setChoice(callId, record);
    try {
      await this.api.chooseRecord(callId, record);
      return true;
    } catch (exc) {
      this.setChoice(callId, previous);
      this.toast(`The call could not be linked to ${record.name}: ${exc.message}`, "error");
      return false;
    }
  }

  /** Picked in a card's chooser: chosen for the call, and shown by hosts that show records
   *  beside the softphone (the console, Salesforce). */
  async pick(callId, record) {
    const ok = await this.choose(callId, record);
    if (ok && this.host.opensPicks) this.show(callId, record);
  }

  /** "Open" on a card: the record is chosen for the call and shown by the host. */
  async open(callId, record) {
    await this.choose(callId, record);
    this.show(callId, record);
  }

  /** The host shows `record` for the call: the navigation that follows is that call's. */
  show(callId, record) {
    this.expectNavigation(callId, [record]);
    this.host.openRecord(recordRef(record), callId);
  }

  /** We are about to make the host navigate to one of `records` for the call. */
  expectNavigation(callId, records) {
    this.expected = { callId, records: records.map(recordRef), until: this.now() + EXPECT_S };
  }

  /** "New" on a card: create the record with the call's id, so the log goes to it. */
  async create(callId, object, fields) {
    const created = await this.api.createRecord(object, fields, callId);
    this.setChoice(callId, created);
    this.toast(`${created.name} was created; the call will be logged there.`, "ok");
    this.show(callId, created);
    return created;
  }

  /** Click-to-dial: the agent's phone rings, then `number`; `record` gets the log. */
  async dial(number, record = null) {
    // Noted before asking: the call's first events may come before the answer does.
    const tail = numberTail(number);
    const dial = tail && record ? { tail, record: recordRef(record), at: this.now() } : null;
    if (dial) this.dials.push(dial);
    try {
      await this.api.placeCall(number, record);
    } catch (exc) {
      this.dials = this.dials.filter((d) => d !== dial);
      const why = exc.unauthenticated ? "sign in first" : exc.message;
      this.toast(`Could not call ${this.format(number)}: ${why}`, "error");
      return false;
    }
    const who = record?.name ? `${record.name} (${this.format(number)})` : this.format(number);
    this.toast(`Calling ${who}… your phone rings first.`, "info");
    return true;
  }

  /** The host shows `record` (null: a page that is not a record). During a call, that
   *  record gets the call's log: the call we showed it for, else the agent's current call. */
  recordViewed(record) {
    this.viewing = record ? recordRef(record) : null;
    if (!this.viewing) return;
    const expected = this.expected;
    if (expected && this.now() < expected.until) {
      if (expected.records.some((r) => sameRecord(r, this.viewing))) {
        this.expected = null;
        this.choose(expected.callId, this.viewing);
        return;
      }
    }
    const call = focusCall(this.entries());
    if (call) this.choose(call.call_id, this.viewing);
  }

  // -- what the calls do --------------------------------------------------------------

  /** After every change of a card (and its CRM lookup). */
  cardChanged(card, view) {
    if (card.crm) this.lookups = true;
    if (!this.seen.has(card.call_id) && LIVE.has(view.kind)) {
      this.seen.add(card.call_id);
      this.firstSeen(card);
    }
    this.host.onCard?.(card, view, this.plan(card));
  }

  firstSeen(card) {
    if (card.direction !== "outbound") return;
    const dial = this.takeDial(card);
    if (dial) {
      this.setChoice(card.call_id, dial.record); // the server knows it from the click
    } else if (this.viewing) {
      // Dialled by hand while a record is open: that record gets the log (seed 002).
      this.choose(card.call_id, this.viewing);
    }
  }

  takeDial(card) {
    const now = this.now();
    this.dials = this.dials.filter((d) => now - d.at < DIAL_WINDOW_S);
    const tails = [card.to_number, card.remote_number, card.from_number].map(numberTail);
    const index = this.dials.findIndex((d) => tails.includes(d.tail));
    return index < 0 ? null : this.dials.splice(index, 1)[0];
  }
}
