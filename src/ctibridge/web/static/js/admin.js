// The admin view: a tenant's live calls (admin WebSocket), its agents and recent calls.

import { OutboxPanel } from "./adminoutbox.js";
import { agentItem, liveRow, presenceOf, recentRow, tenantHome } from "./adminrows.js";
import { SalesforcePanel } from "./adminsalesforce.js";
import { Api, TokenStore, fragmentPairs, takeTokenFromFragment } from "./api.js";
import {
  LINGER_MS,
  formatDuration,
  homeCountry,
  newer,
  newestFirst,
  startOfDay,
  timerSeconds,
} from "./calls.js";
import { ReconnectingSocket } from "./socket.js";
import { clockTime, fillIcons, h, setText, showStatus, showView } from "./ui.js";

const TOKEN_KEY = "ctibridge.admin.token";
const TENANT_KEY = "ctibridge.admin.tenant";
const ALL_TENANTS = "*";
const PAGE_SIZE = 25;
const REFRESH_MS = 600;

const $ = (role) => document.querySelector(`[data-role="${role}"]`);

function remember(key, value) {
  try {
    if (value) window.localStorage.setItem(key, value);
    else window.localStorage.removeItem(key);
  } catch {
    // Storage disabled: nothing is remembered.
  }
}

function recall(key) {
  try {
    return window.localStorage.getItem(key);
  } catch {
    return null;
  }
}

class AdminView {
  constructor() {
    this.tokens = new TokenStore(TOKEN_KEY);
    this.api = new Api(this.tokens);
    this.socket = null;
    this.home = homeCountry(Intl.DateTimeFormat().resolvedOptions().timeZone);
    this.offsetMs = 0;
    this.tokenTenant = null;
    this.tenant = null;
    this.tenants = new Set();
    this.live = new Map(); // call id → {card, timer}
    this.agents = [];
    this.presence = new Map(); // agent id → {status, chosen, since} (ctibridge presence)
    this.recent = [];
    this.cursor = null;
    this.requests = { recent: 0, agents: 0, missed: 0, presence: 0 };
    this.refreshTimer = null;
    this.timers = []; // {cell, card} of the live rows
    this.salesforce = new SalesforcePanel(this.api, {
      now: () => this.now(),
      onAgentsChanged: () => this.loadAgents(),
      onRejected: () => this.rejected("That token is not valid (or no longer)."),
    });
    this.salesforceConnected = false;
    this.outbox = new OutboxPanel(this.api, {
      now: () => this.now(),
      onRejected: () => this.rejected("That token is not valid (or no longer)."),
    });
  }

  now() {
    return (Date.now() + this.offsetMs) / 1000;
  }

  boot() {
    fillIcons();
    $("signin-form").addEventListener("submit", (event) => this.onToken(event));
    $("sign-out").addEventListener("click", () => this.forget());
    $("tenant-select").addEventListener("change", (event) => this.select(event.target.value));
    $("tenant-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const id = event.currentTarget.tenant.value.trim();
      if (id) this.select(id);
    });
    $("filters").addEventListener("change", () => this.loadRecent());
    $("filters").addEventListener("submit", (event) => event.preventDefault());
    $("refresh").addEventListener("click", () => this.refresh());
    $("more").addEventListener("click", () => this.loadRecent({ more: true }));
    this.salesforce.boot();
    this.outbox.boot();
    this.tick();
    window.setInterval(() => this.tick(), 500);
    window.addEventListener("hashchange", () => this.onNewLink());
    this.takeLink();
    if (this.tokens.get()) this.start();
    else this.showSignIn();
  }

  /** `#token=...&tenant=...`: keep both, clear the address bar. Returns whether a token came. */
  takeLink() {
    const pairs = fragmentPairs(window.location.hash);
    const tenant = pairs.find(([key]) => key === "tenant")?.[1];
    if (tenant) remember(TENANT_KEY, tenant);
    const token = takeTokenFromFragment();
    if (pairs.some(([key, value]) => key === "salesforce" && value === "connected")) {
      this.salesforceConnected = true; // back from Salesforce: say so once, then drop the flag
      const { pathname, search } = window.location;
      window.history.replaceState(window.history.state, "", `${pathname}${search}`);
    }
    if (token) this.tokens.set(token);
    return Boolean(token);
  }

  /** A link opened in this tab while the page is already open. */
  onNewLink() {
    if (!this.takeLink()) return;
    this.stop();
    this.start();
  }

  // -- token -------------------------------------------------------------------------------

  showSignIn(message = null, tone = "error") {
    const notice = $("signin-message");
    notice.hidden = !message;
    notice.textContent = message ?? "";
    notice.dataset.tone = tone;
    showView("signin");
    $("signin-form").token.focus();
  }

  onToken(event) {
    event.preventDefault();
    const token = event.currentTarget.token.value.trim();
    if (!token) {
      this.showSignIn("Paste the admin token.");
      return;
    }
    event.currentTarget.reset();
    this.tokens.set(token);
    this.start();
  }

  forget() {
    this.stop();
    this.tokens.clear();
    remember(TENANT_KEY, null);
    this.showSignIn("The admin token is forgotten on this browser.", "info");
  }

  rejected(message) {
    this.stop();
    this.tokens.clear();
    this.showSignIn(message);
  }

  async start() {
    let me;
    try {
      me = await this.api.me();
    } catch (exc) {
      if (exc.unauthenticated) this.rejected("That token is not valid (or no longer).");
      else this.showSignIn(exc.offline ? "The server cannot be reached." : exc.message);
      return;
    }
    if (me.role !== "admin") {
      this.rejected("That is an agent’s token: agents use the softphone.");
      return;
    }
    this.tokenTenant = me.tenant_id;
    showView("app");
    if (me.tenant_id !== ALL_TENANTS) this.select(me.tenant_id);
    else if (recall(TENANT_KEY)) this.select(recall(TENANT_KEY));
    else this.renderTenants();
    if (this.salesforceConnected) this.salesforce.connected();
    this.salesforceConnected = false;
    this.socket = new ReconnectingSocket({
      url: () => this.api.socketUrl(),
      onMessage: (message) => this.onMessage(message),
      onStatus: (status) => showStatus($("status"), status),
      onRejected: () => this.rejected("That token is not valid (or no longer)."),
    });
    this.socket.start();
  }

  stop() {
    if (this.socket) this.socket.stop();
    this.socket = null;
    for (const entry of this.live.values()) clearTimeout(entry.timer);
    this.live.clear();
    this.tenants.clear();
    this.tenant = null;
    this.agents = [];
    this.presence.clear();
    this.recent = [];
    this.salesforce.show(null);
    this.outbox.show(null);
  }

  // -- tenants -----------------------------------------------------------------------------

  seeTenant(id) {
    if (!id || this.tenants.has(id)) return;
    this.tenants.add(id);
    if (!this.tenant) this.select(id);
    else this.renderTenants();
  }

  select(id) {
    this.tenant = id;
    this.tenants.add(id);
    if (this.tokenTenant === ALL_TENANTS) remember(TENANT_KEY, id);
    this.renderTenants();
    this.renderLive();
    this.loadAgents();
    this.loadPresence();
    this.loadRecent();
    this.loadMissed();
    this.salesforce.show(id);
    this.outbox.show(id);
  }

  renderTenants() {
    const select = $("tenant-select");
    const ids = [...this.tenants].sort();
    select.replaceChildren(
      ...(this.tenant ? [] : [h("option", { value: "", text: "Choose a tenant…" })]),
      ...ids.map((id) =>
        h("option", { value: id, text: id.length > 14 ? `${id.slice(0, 12)}…` : id, title: id }),
      ),
    );
    select.value = this.tenant ?? "";
    select.disabled = this.tokenTenant !== ALL_TENANTS;
    $("tenant-prompt").hidden = Boolean(this.tenant);
  }

  // -- live calls --------------------------------------------------------------------------

  onMessage(message) {
    if (message.server_time) this.offsetMs = message.server_time * 1000 - Date.now();
    if (message.type === "hello") {
      if (message.tenant_id && message.tenant_id !== ALL_TENANTS) this.seeTenant(message.tenant_id);
    } else if (message.type === "snapshot") {
      this.onSnapshot(message.calls ?? []);
    } else if (message.type === "event" && message.call) {
      for (const id of message.replaces ?? message.call.replaces ?? []) this.forgetCall(id);
      this.accept(message.call);
    } else if (message.type === "presence" && message.agent_id) {
      this.presence.set(message.agent_id, message);
      this.renderAgents();
    }
  }

  onSnapshot(cards) {
    this.loadPresence(); // frames missed while the socket was away
    const present = new Set(cards.map((card) => card.call_id));
    let gone = false;
    for (const [id, entry] of this.live) {
      if (!entry.timer && !present.has(id)) {
        this.live.delete(id);
        gone = true;
      }
    }
    for (const card of cards) this.accept(card);
    this.renderLive();
    if (gone) this.refreshSoon();
  }

  accept(card) {
    this.seeTenant(card.tenant_id);
    const entry = this.live.get(card.call_id) ?? { card: null, timer: null };
    if (newer(entry.card ?? undefined, card) !== card) return;
    entry.card = card;
    this.live.set(card.call_id, entry);
    if (card.state === "ended" && !entry.timer) {
      entry.timer = setTimeout(() => this.forgetCall(card.call_id), LINGER_MS);
      this.refreshSoon();
    }
    this.renderLive();
  }

  forgetCall(id) {
    const entry = this.live.get(id);
    if (!entry) return;
    clearTimeout(entry.timer);
    this.live.delete(id);
    this.renderLive();
  }

  liveCards() {
    const cards = [...this.live.values()].map((entry) => entry.card);
    return newestFirst(cards.filter((card) => !this.tenant || card.tenant_id === this.tenant));
  }

  agentLabel(ext) {
    const agent = this.agents.find((a) => a.extension === ext);
    return agent ? `${agent.name} (${ext})` : `Ext. ${ext}`;
  }

  rowContext() {
    return { home: this.home, label: (ext) => this.agentLabel(ext), now: this.now() };
  }

  renderLive() {
    const cards = this.liveCards();
    const ctx = this.rowContext();
    this.timers = [];
    const rows = cards.map((card) => {
      const { row, timerCell } = liveRow(card, ctx);
      this.timers.push({ cell: timerCell, card });
      return row;
    });
    $("live-rows").replaceChildren(...rows);
    $("live-empty").hidden = rows.length > 0;
    this.renderStats(cards);
    this.renderAgents();
    this.tick();
  }

  renderStats(cards) {
    const active = cards.filter((card) => card.state !== "ended");
    setText($("stat-active"), String(active.length));
    setText($("stat-ringing"), String(active.filter((card) => card.state === "ringing").length));
    const busy = new Set(
      active.filter((card) => card.state !== "ringing").flatMap((card) => card.current ?? []),
    );
    setText($("stat-busy"), String(busy.size));
  }

  tick() {
    const now = this.now();
    setText($("clock"), clockTime(now));
    for (const { cell, card } of this.timers) {
      setText(cell, formatDuration(timerSeconds(card, now)));
    }
  }

  // -- agents ------------------------------------------------------------------------------

  async loadAgents() {
    const request = ++this.requests.agents;
    const tenant = this.tenant;
    try {
      const result = await this.api.agents(tenant);
      if (request !== this.requests.agents) return;
      this.agents = result.items ?? [];
      this.home = tenantHome(this.agents) ?? this.home;
      this.renderRecent();
      setText($("agents-empty-title"), "No agents yet");
    } catch (exc) {
      if (request !== this.requests.agents) return;
      if (exc.unauthenticated) return this.rejected("That token is not valid (or no longer).");
      this.agents = [];
      setText($("agents-empty-title"), `Agents could not be loaded: ${exc.message}`);
    }
    this.renderAgents();
    this.renderLive();
  }

  /** GET /api/presence: every agent's presence status (then `presence` frames keep it fresh). */
  async loadPresence() {
    if (!this.tenant) return;
    const request = ++this.requests.presence;
    try {
      const params = { tenant: this.tenant };
      const result = await this.api.request("GET", "/api/presence", { params });
      if (request !== this.requests.presence) return;
      for (const item of result.items ?? []) {
        // A `presence` frame may have arrived while this list was on its way: keep the
        // newer of the two (by the time the status was taken), never roll one back.
        const known = this.presence.get(item.agent_id);
        if (!known || (item.since ?? 0) >= (known.since ?? 0)) this.presence.set(item.agent_id, item);
      }
    } catch {
      return; // the list still shows what agents are doing on calls
    }
    this.renderAgents();
  }

  renderAgents() {
    const agents = [...this.agents].sort((a, b) =>
      String(a.extension ?? "").localeCompare(String(b.extension ?? ""), undefined, { numeric: true }),
    );
    const live = this.liveCards();
    const rows = agents.map((agent) =>
      agentItem(agent, presenceOf(agent, live), this.presence.get(agent.agent_id) ?? null),
    );
    $("agents").replaceChildren(...rows);
    $("agents-empty").hidden = rows.length > 0;
    setText($("agents-count"), rows.length ? String(rows.length) : "");
  }

  // -- recent calls ------------------------------------------------------------------------

  filters() {
    const form = $("filters");
    return { direction: form.direction.value, missed: form.missed.checked ? "true" : "" };
  }

  refresh() {
    this.loadRecent();
    this.loadMissed();
    this.loadAgents();
    this.loadPresence();
    this.salesforce.show(this.tenant);
    this.outbox.show(this.tenant);
  }

  refreshSoon() {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => {
      this.loadRecent();
      this.loadMissed();
    }, REFRESH_MS);
    this.outbox.refreshSoon(); // the ended call's log is being written
  }

  async loadRecent({ more = false } = {}) {
    if (!this.tenant) return;
    const request = ++this.requests.recent;
    const params = { tenant: this.tenant, limit: PAGE_SIZE, active: "false", ...this.filters() };
    if (more) params.cursor = this.cursor;
    let page;
    try {
      page = await this.api.calls(params);
    } catch (exc) {
      if (request !== this.requests.recent) return;
      if (exc.unauthenticated) return this.rejected("That token is not valid (or no longer).");
      this.showRecentError(`Recent calls could not be loaded: ${exc.message}`);
      return;
    }
    if (request !== this.requests.recent) return;
    this.showRecentError(null);
    this.recent = more ? [...this.recent, ...(page.items ?? [])] : page.items ?? [];
    this.cursor = page.next_cursor ?? null;
    this.renderRecent();
  }

  async loadMissed() {
    if (!this.tenant) return;
    const request = ++this.requests.missed;
    const since = startOfDay(this.now());
    try {
      const page = await this.api.calls({ tenant: this.tenant, since, missed: "true", limit: 500 });
      if (request !== this.requests.missed) return;
      const count = (page.items ?? []).length;
      setText($("stat-missed"), page.next_cursor ? `${count}+` : String(count));
    } catch {
      if (request === this.requests.missed) setText($("stat-missed"), "–");
    }
  }

  showRecentError(message) {
    const el = $("recent-error");
    el.hidden = !message;
    el.textContent = message ?? "";
  }

  renderRecent() {
    const ctx = this.rowContext();
    const rows = this.recent.map((card) => recentRow(card, ctx));
    $("recent-rows").replaceChildren(...rows);
    $("recent-empty").hidden = rows.length > 0;
    const filtered = Object.values(this.filters()).some(Boolean);
    setText(
      $("recent-empty-text"),
      filtered ? "No calls match these filters." : "Finished calls are listed here.",
    );
    $("more").hidden = !this.cursor;
  }
}

new AdminView().boot();
