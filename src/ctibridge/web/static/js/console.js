// The CRM console: record lists and record pages (deep-linkable at
// /console/records/<object>/<id>) around the softphone, docked on the right. The softphone
// is the same class as /softphone; the console is its *host*: screen pops open records
// here, and opening a record during a call tells the server the call's log goes there.

import { focusCall } from "./crmlink.js";
import {
  OBJECTS,
  activityRecording,
  activityRow,
  detailsList,
  emptyState,
  listPath,
  ourRecordingId,
  pluralOf,
  recordHead,
  recordPath,
  recordRow,
} from "./consoleviews.js";
import { RecordForm, objectLabel } from "./screenpop.js";
import { Softphone } from "./softphone.js";
import { h, icon, setText } from "./ui.js";

const TITLE = "Console · ctibridge";
const PAGE_SIZE = 50;
const SEARCH_DELAY_MS = 250;
/** After a call ends, its log reaches the CRM through the outbox: look again a few times. */
const HISTORY_RELOADS_MS = [1200, 3000, 6000];
/** While a recording on the record page is being fetched, ask again after these pauses
 *  (then every last one). */
const RECORDING_POLL_MS = [1500, 3000, 6000, 15000, 30000];

const $ = (role) => document.querySelector(`[data-role="${role}"]`);

/** What an address shows: {view: "list", object, q} or {view: "record", object, id}. */
export function parseRoute(loc = window.location) {
  const match = loc.pathname.match(/^\/console\/records\/([^/]+)\/([^/]+)\/?$/);
  if (match) {
    const [object, id] = [match[1], match[2]].map(decodeURIComponent);
    return { view: "record", object, id };
  }
  const params = new URLSearchParams(loc.search);
  const wanted = params.get("object");
  const object = OBJECTS.some((o) => o.name === wanted) ? wanted : OBJECTS[0].name;
  return { view: "list", object, q: params.get("q") ?? "" };
}

function columnsOf(object) {
  return ["Name", object === "Account" ? "Industry" : "Company", "Phone", "Email", "Last call"];
}

class Console {
  constructor() {
    this.softphone = new Softphone({ title: TITLE, onSession: (agent) => this.onSession(agent) });
    this.crm = this.softphone.crm;
    this.crm.setHost(this);
    this.api = this.softphone.api;
    this.main = $("main");
    this.request = 0;
    this.agents = new Map();
    this.directory = Promise.resolve();
    this.popped = new Set(); // calls already screen-popped here
    this.reloads = [];
    this.ended = new Set(); // calls whose end already asked for a history reload
    this.searchTimer = null;
    this.recordingTimer = null; // asks again for recordings being fetched
    this.shown = null; // the record on screen (with its activities), or null
  }

  boot() {
    document.addEventListener("click", (event) => this.onLinkClick(event));
    window.addEventListener("popstate", () => this.render());
    this.softphone.boot();
  }

  get home() {
    return this.softphone.home;
  }

  now() {
    return this.softphone.now();
  }

  onSession(agent) {
    if (!agent) {
      this.shown = null;
      this.main.replaceChildren();
      return;
    }
    this.directory = this.loadDirectory();
    this.render();
  }

  async loadDirectory() {
    try {
      const page = await this.api.directory();
      this.agents = new Map((page.items ?? []).map((a) => [a.agent_id, a.name]));
    } catch {
      // Names are a nicety: the history shows without them.
    }
  }

  // -- navigation ----------------------------------------------------------------------

  onLinkClick(event) {
    const link = event.target.closest?.("a[data-nav]");
    if (!link || event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    this.go(link.getAttribute("href"));
  }

  go(path, { replace = false } = {}) {
    const here = `${window.location.pathname}${window.location.search}`;
    if (path !== here) {
      if (replace) window.history.replaceState(null, "", path);
      else window.history.pushState(null, "", path);
    }
    this.render();
  }

  render() {
    const route = parseRoute();
    this.markTab(route.object);
    this.clearReloads();
    if (route.view === "record") this.showRecord(route.object, route.id);
    else this.showList(route.object, route.q);
  }

  markTab(object) {
    for (const tab of document.querySelectorAll("[data-role=tabs] a")) {
      tab.setAttribute("aria-current", String(tab.dataset.object === object));
    }
  }

  // -- lists ---------------------------------------------------------------------------

  async showList(object, query) {
    this.shown = null;
    this.crm.recordViewed(null);
    document.title = `${pluralOf(object)} · ${TITLE}`;
    const request = ++this.request;
    const view = this.listView(object, query);
    this.main.replaceChildren(view.el);
    await this.loadRows(view, object, query, null, request);
  }

  listView(object, query) {
    const search = h("input", {
      class: "field__input search__input",
      type: "search",
      value: query,
      placeholder: `Search ${pluralOf(object).toLowerCase()} by name, company, email or number`,
      attrs: {
        "aria-label": `Search ${pluralOf(object).toLowerCase()}`,
        "data-testid": "record-search",
      },
      on: { input: (event) => this.searchSoon(object, event.target.value) },
    });
    const rows = h("tbody", { data: { role: "record-rows" } });
    const more = h("button", {
      class: "button more-button",
      type: "button",
      text: "Show more",
      hidden: true,
    });
    const status = h("div", { class: "records__status" });
    const formSlot = h("div", { class: "records__form" });
    const newButton =
      object === "Account"
        ? null
        : h(
            "button",
            {
              class: "button button--accent",
              type: "button",
              data: { testid: "new-record" },
              on: { click: () => this.openNewForm(formSlot, object) },
            },
            icon("plus"),
            h("span", { text: `New ${objectLabel(object).toLowerCase()}` }),
          );
    const el = h(
      "section",
      { class: "records", data: { testid: "record-list-page", object } },
      h(
        "div",
        { class: "records__head" },
        h("h1", { class: "page-title", text: pluralOf(object) }),
        h("label", { class: "search" }, icon("search", "icon search__icon"), search),
        newButton,
      ),
      formSlot,
      h(
        "div",
        { class: "table-box" },
        h(
          "table",
          { class: "table records-table", data: { testid: "record-list" } },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              columnsOf(object).map((text, i) =>
                h("th", { scope: "col", class: i === 4 ? "num" : "", text }),
              ),
            ),
          ),
          rows,
        ),
        status,
      ),
      more,
    );
    return { el, rows, more, status, search };
  }

  async loadRows(view, object, query, cursor, request) {
    let page;
    view.status.replaceChildren(h("p", { class: "records__loading", text: "Loading…" }));
    try {
      page = await this.api.records(object, { q: query, limit: PAGE_SIZE, cursor });
    } catch (exc) {
      if (request !== this.request) return;
      view.status.replaceChildren(
        emptyState("search", "The records could not be loaded", exc.message, "records-error"),
      );
      return;
    }
    if (request !== this.request) return;
    const ctx = { home: this.home, dial: null, now: this.now() };
    const dial = (record) => (number) => this.crm.dial(number, record);
    view.rows.append(...page.items.map((r) => recordRow(r, { ...ctx, dial: dial(r) })));
    const none = view.rows.children.length === 0;
    view.status.replaceChildren(
      none
        ? emptyState(
            "search",
            query ? `No ${pluralOf(object).toLowerCase()} match “${query}”` : "Nothing here yet",
            query ? "Try a name, a company, an email address or a phone number." : null,
            "records-empty",
          )
        : "",
    );
    view.more.hidden = !page.next_cursor;
    view.more.onclick = () => {
      view.more.hidden = true;
      this.loadRows(view, object, query, page.next_cursor, request);
    };
  }

  searchSoon(object, text) {
    clearTimeout(this.searchTimer);
    this.searchTimer = setTimeout(() => {
      const query = text.trim();
      window.history.replaceState(null, "", listPath(object, query));
      const request = ++this.request;
      const view = this.currentListView(object);
      if (!view) return;
      view.rows.replaceChildren();
      this.loadRows(view, object, query, null, request);
    }, SEARCH_DELAY_MS);
  }

  currentListView(object) {
    const el = this.main.querySelector(`[data-testid=record-list-page][data-object="${object}"]`);
    if (!el) return null;
    return {
      el,
      rows: el.querySelector("tbody"),
      more: el.querySelector(".more-button"),
      status: el.querySelector(".records__status"),
    };
  }

  openNewForm(slot, object) {
    const form = new RecordForm({
      submitText: "Create",
      onSubmit: async (kind, fields) => {
        const created = await this.api.createRecord(kind, fields);
        this.go(recordPath(created.object, created.id));
      },
      onCancel: () => slot.replaceChildren(),
    });
    form.setObject(object);
    slot.replaceChildren(h("div", { class: "card-box" }, form.el));
    form.focus();
  }

  // -- a record ------------------------------------------------------------------------

  async showRecord(object, id) {
    const request = ++this.request;
    if (this.shown?.object !== object || this.shown?.id !== id) {
      this.main.replaceChildren(
        h("div", {
          class: "records__loading",
          text: "Loading…",
          data: { testid: "record-loading" },
        }),
      );
    }
    let record;
    try {
      record = await this.api.record(object, id);
    } catch (exc) {
      if (request !== this.request) return;
      this.shown = null;
      const missing = exc.status === 404;
      this.main.replaceChildren(
        this.crumbs(object, missing ? "Not found" : "Error"),
        emptyState(
          "search",
          missing
            ? `No such ${objectLabel(object).toLowerCase()}`
            : "The record could not be loaded",
          missing ? "It may have been deleted, or the link is wrong." : exc.message,
          "record-error",
        ),
      );
      return;
    }
    await this.directory; // agents' names for the call history
    const urls = (record.activities ?? []).map((a) => a.recording_url).filter(Boolean);
    const states = await this.recordingStates(urls);
    if (request !== this.request) return;
    const first = this.shown?.object !== object || this.shown?.id !== id;
    this.shown = record;
    document.title = `${record.name} · ${TITLE}`;
    this.main.replaceChildren(this.recordView(record, states));
    this.watchRecordings(states, request, 0);
    if (first) this.crm.recordViewed(record);
    this.showCallLink();
  }

  crumbs(object, name) {
    return h(
      "nav",
      { class: "crumbs", attrs: { "aria-label": "Breadcrumb" } },
      h("a", { href: listPath(object), data: { nav: "" }, text: pluralOf(object) }),
      icon("chevronRight"),
      h("span", { text: name }),
    );
  }

  recordView(record, states = new Map()) {
    const dial = (number) => this.crm.dial(number, record);
    const ctx = { home: this.home, dial };
    const activities = record.activities ?? [];
    const history = activities.length
      ? h(
          "ol",
          { class: "activities", data: { testid: "activities" } },
          activities.map((a) =>
            activityRow(a, {
              agents: this.agents,
              now: this.now(),
              play: (url, slot, button) => this.play(url, slot, button),
              recordingState: (url) => states.get(url) ?? "stored",
            }),
          ),
        )
      : emptyState(
          "history",
          "No calls yet",
          "Calls logged to this record are listed here.",
          "activities-empty",
        );
    return h(
      "article",
      {
        class: "record",
        data: { testid: "record-page", object: record.object, recordId: record.id },
      },
      this.crumbs(record.object, record.name),
      h(
        "div",
        { class: "call-link", data: { role: "call-link", testid: "call-link" }, hidden: true },
        icon("phone"),
        h("span", { data: { role: "call-link-text" } }),
      ),
      recordHead(record, ctx),
      h(
        "div",
        { class: "record__grid" },
        h(
          "section",
          { class: "card-box" },
          h("h2", { class: "panel__title", text: "Details" }),
          detailsList(record, ctx),
        ),
        h(
          "section",
          { class: "card-box" },
          h(
            "div",
            { class: "panel__head" },
            h("h2", { class: "panel__title", text: "Call history" }),
            h("span", { class: "count", text: activities.length ? String(activities.length) : "" }),
          ),
          history,
        ),
      ),
    );
  }

  /** url → "stored", "pending" or "failed" for each of our recording links in `urls` (a
   *  link elsewhere is left out: it plays as it is). Refused or unknown: "failed"; the
   *  server not answering: "pending" (asked again). */
  async recordingStates(urls) {
    const ours = [...new Set(urls)].filter((url) => ourRecordingId(url));
    const answers = await Promise.all(
      ours.map((url) =>
        this.api.recordingState(ourRecordingId(url)).then(
          (answer) => answer.state,
          (exc) => ([403, 404].includes(exc.status) ? "failed" : "pending"),
        ),
      ),
    );
    return new Map(ours.map((url, i) => [url, answers[i]]));
  }

  /** While a recording on the record page shown by `request` is pending, ask again later
   *  and swap in its play button (or "unavailable") in place: nothing else is redrawn, so
   *  a recording already playing goes on. */
  watchRecordings(states, request, polls) {
    clearTimeout(this.recordingTimer);
    const pending = [...states].filter(([, state]) => state === "pending").map(([url]) => url);
    if (pending.length === 0) return;
    const delay = RECORDING_POLL_MS[Math.min(polls, RECORDING_POLL_MS.length - 1)];
    this.recordingTimer = setTimeout(async () => {
      const fresh = await this.recordingStates(pending);
      if (request !== this.request) return;
      for (const [url, state] of fresh) {
        if (state !== "pending") this.showRecording(url, state);
      }
      this.watchRecordings(fresh, request, polls + 1);
    }, delay);
  }

  showRecording(url, state) {
    for (const box of this.main.querySelectorAll(".activity__recording")) {
      if (box.dataset.recordingUrl !== url) continue;
      const slot = box.parentElement.querySelector(".activity__media");
      box.replaceChildren(
        activityRecording(url, state, slot, (src, where, button) => this.play(src, where, button)),
      );
    }
  }

  /** Recordings need the agent's token: `<audio>` sends it as `?token=` (same origin only). */
  play(url, slot, button) {
    let src = url;
    const token = this.softphone.tokens.get();
    if (url.startsWith("/") && token) {
      src = `${url}${url.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}`;
    }
    const audio = h("audio", {
      class: "activity__audio",
      controls: true,
      preload: "none",
      src,
      data: { testid: "recording-audio" },
    });
    slot.replaceChildren(audio);
    button.hidden = true;
    audio.play().catch(() => {});
  }

  /** On a record page during a call: say whether the call's log goes to this record. */
  showCallLink() {
    const box = this.main.querySelector("[data-role=call-link]");
    if (!box || !this.shown) return;
    const call = focusCall(this.softphone.liveEntries());
    // The server's rule: the record chosen for the call, else its only match.
    const plan = call ? this.crm.plan(call) : null;
    const record = plan?.kind === "chosen" || plan?.kind === "single" ? plan.record : null;
    const here = record?.object === this.shown.object && record?.id === this.shown.id;
    box.hidden = !here;
    if (here) {
      const party = this.softphone.partyText(call);
      const who = /\d/.test(party) && record.name ? `${record.name} (${party})` : party;
      const text = `On a call with ${who}: the call is logged to this record.`;
      setText(box.querySelector("[data-role=call-link-text]"), text);
    }
  }

  // -- the softphone's host --------------------------------------------------------------

  get opensPicks() {
    return true;
  }

  openRecord(record) {
    this.go(recordPath(record.object, record.id));
  }

  onChoice() {
    this.showCallLink();
  }

  /** A ringing inbound call with one match opens it (once; not while the agent talks on
   *  another call); an ended call refreshes the open record, where its log is to land. */
  onCard(card, view, plan) {
    const id = card.call_id;
    const ringing = view.kind === "ringing" && card.direction === "inbound";
    if (ringing && plan.kind === "single" && !this.popped.has(id) && !this.talking(id)) {
      this.popped.add(id);
      this.crm.open(id, plan.record);
    }
    if (card.state === "ended" && !this.ended.has(id)) {
      this.ended.add(id);
      if (this.shown) this.reloadHistorySoon();
    }
    this.showCallLink();
  }

  /** Whether the agent is talking on a call other than `callId`. */
  talking(callId) {
    const busy = ({ card, view }) =>
      card.call_id !== callId && ["connected", "held"].includes(view?.kind);
    return this.softphone.liveEntries().some(busy);
  }

  reloadHistorySoon() {
    this.clearReloads();
    const { object, id } = this.shown;
    this.reloads = HISTORY_RELOADS_MS.map((ms) =>
      setTimeout(() => {
        if (this.shown?.object === object && this.shown?.id === id) this.showRecord(object, id);
      }, ms),
    );
  }

  clearReloads() {
    for (const timer of this.reloads) clearTimeout(timer);
    this.reloads = [];
  }
}

new Console().boot();
