// The agent softphone page: sign-in, live call cards from the WebSocket, today's history,
// and the screen pop on each card. The console (console.js) docks the same class beside its
// CRM pages; inside Salesforce (?sfdcIframeOrigin=...) opencti.js joins in.

import { Api, TokenStore, takeTokenFromFragment } from "./api.js";
import {
  LINGER_MS,
  formatNumber,
  homeCountry,
  initials,
  isLive,
  newer,
  newestFirst,
  outcomeOf,
  remoteParty,
  startOfDay,
  viewOf,
} from "./calls.js";
import { CallCardView, historyRow, recordingOf, recordingSrc } from "./cardview.js";
import { CrmLink } from "./crmlink.js";
import { CrmStrip } from "./screenpop.js";
import { ReconnectingSocket } from "./socket.js";
import { announce, clockTime, fillIcons, h, setText, showStatus, showView } from "./ui.js";

const TOKEN_KEY = "ctibridge.softphone.token";
const HISTORY_LIMIT = 50;
/** Let the server store an ended call before asking for the history again. */
const HISTORY_REFRESH_MS = 600;
const HISTORY_RETRY_MS = 10000;
/** While a recording in the history is being fetched, look again after these pauses (then
 *  every last one): it becomes playable once ctibridge has stored it. */
const RECORDING_POLL_MS = [1500, 3000, 6000, 15000, 30000];
const LEAVE_MS = 260;
const TITLE = "Softphone · ctibridge";
const TOAST_MS = 6000;

const $ = (role) => document.querySelector(`[data-role="${role}"]`);

export class Softphone {
  /** `title`: the page title when no call rings; `onSession(agent)`: called with the
   *  agent on each new session's first hello, and with null when the session stops. */
  constructor({ title = TITLE, onSession = () => {} } = {}) {
    this.title = title;
    this.onSession = onSession;
    this.tokens = new TokenStore(TOKEN_KEY);
    this.api = new Api(this.tokens);
    this.socket = null;
    this.historyRequest = 0;
    this.historyTimer = null;
    this.recordingTimer = null;
    this.recordingPolls = 0;
    this.toastTimer = null;
    this.connections = 0; // sockets that reached "hello" (a test and debugging aid)
    this.crm = new CrmLink({
      api: this.api,
      entries: () => this.liveEntries(),
      toast: (text, tone) => this.toast(text, tone),
      changed: (callId) => this.redrawCrm(callId),
      now: () => this.now(),
      format: (number) => formatNumber(number, this.home),
    });
    this.clearState();
  }

  clearState() {
    this.agent = null;
    this.ext = null;
    this.home = homeCountry(Intl.DateTimeFormat().resolvedOptions().timeZone);
    this.offsetMs = 0;
    this.live = new Map(); // call id → {view (CallCardView), state (viewOf), card, timer, strip}
    this.known = new Map(); // call id → newest card seen
    this.history = new Map(); // call id → card
    for (const audio of this.players?.values() ?? []) audio.pause();
    this.players = new Map(); // call id → the <audio> of its history row (kept across redraws)
    this.lateCrm = new Map(); // call id → a lookup result that came before the call's card
    this.greeted = false;
    this.crm.reset();
    clearTimeout(this.historyTimer);
    this.historyTimer = null;
    this.watchRecordings(false);
    this.historyRequest += 1; // answers to an earlier session's requests are dropped
  }

  /** The live cards with how they show: [{card, view}] (view: what `viewOf` says). */
  liveEntries() {
    return [...this.live.values()].map(({ card, state }) => ({ card, view: state }));
  }

  /** Unix seconds on the server's clock. */
  now() {
    return (Date.now() + this.offsetMs) / 1000;
  }

  ctx() {
    return { ext: this.ext, home: this.home, now: this.now() };
  }

  // -- start, sign in, sign out ------------------------------------------------------------

  boot() {
    fillIcons();
    $("signin-form").addEventListener("submit", (event) => this.onSignIn(event));
    $("sign-out").addEventListener("click", () => this.signOut());
    this.tick();
    window.setInterval(() => this.tick(), 500);
    window.addEventListener("hashchange", () => this.onNewLink());
    const fromAddress = takeTokenFromFragment();
    if (fromAddress) this.tokens.set(fromAddress);
    if (this.tokens.get()) this.startSession();
    else this.showSignIn();
    if (salesforceOrigin()) this.joinSalesforce();
  }

  /** Inside Salesforce Lightning: Open CTI drives screen pops and click-to-dial. */
  async joinSalesforce() {
    let module;
    try {
      module = await import("./opencti.js");
    } catch {
      this.banner("The Salesforce connection could not be loaded. Reload the page.");
      return;
    }
    const host = new module.OpenCtiHost(this);
    this.crm.setHost(host);
    await host.start();
  }

  /** A sign-in link opened in this tab while the page is already open. */
  onNewLink() {
    const token = takeTokenFromFragment();
    if (!token) return;
    this.stopSession();
    this.tokens.set(token);
    this.startSession();
  }

  showSignIn(message = null, tone = "error") {
    document.title = this.title;
    const notice = $("signin-message");
    notice.hidden = !message;
    notice.textContent = message ?? "";
    notice.dataset.tone = tone;
    showView("signin");
    const form = $("signin-form");
    (form.login.value ? form.password : form.login).focus();
  }

  async onSignIn(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const login = form.login.value.trim();
    const password = form.password.value;
    if (!login || !password) {
      this.showSignIn("Enter your login and password.");
      return;
    }
    const button = $("signin-submit");
    button.disabled = true;
    button.textContent = "Signing in…";
    try {
      await this.api.signIn(login, password);
      form.reset();
      this.startSession();
    } catch (exc) {
      let message = exc.message;
      if (exc.unauthenticated) message = "That login and password don’t match. Please try again.";
      else if (exc.offline) message = "The server cannot be reached. Check your connection.";
      this.showSignIn(message);
      form.password.select();
    } finally {
      button.disabled = false;
      button.textContent = "Sign in";
    }
  }

  startSession() {
    this.clearState();
    this.renderLive();
    this.renderHistory();
    showView("app");
    this.socket = new ReconnectingSocket({
      url: () => this.api.socketUrl(),
      onMessage: (message) => this.onMessage(message),
      onStatus: (status) => showStatus($("status"), status),
      onRejected: () => this.endSession("Your session has expired. Please sign in again."),
    });
    this.socket.start();
  }

  stopSession() {
    if (this.socket) this.socket.stop();
    this.socket = null;
    for (const entry of this.live.values()) clearTimeout(entry.timer);
    $("cards").replaceChildren();
    this.clearState();
    this.onSession(null);
  }

  endSession(message) {
    this.stopSession();
    this.tokens.clear();
    this.showSignIn(message);
  }

  async signOut() {
    this.stopSession();
    try {
      await this.api.signOut();
    } catch {
      // The token is forgotten locally either way.
    }
    this.showSignIn("You have signed out.", "info");
  }

  // -- messages from the server ------------------------------------------------------------

  onMessage(message) {
    if (message.server_time) this.offsetMs = message.server_time * 1000 - Date.now();
    if (message.type === "hello") this.onHello(message);
    else if (message.type === "snapshot") this.onSnapshot(message.calls ?? []);
    else if (message.type === "event" && message.call) this.onEvent(message);
    else if (message.type === "crm" && message.call_id) this.onCrm(message.call_id, message.crm);
  }

  onHello(message) {
    if (message.role !== "agent") {
      this.endSession("That link is for the admin view: agents sign in here.");
      return;
    }
    this.connections += 1;
    $("status").dataset.connections = String(this.connections);
    this.agent = message.agent;
    this.ext = message.agent?.extension ?? null;
    this.home = homeCountry(message.agent?.timezone) ?? this.home;
    this.renderMe();
    this.loadHistory();
    if (!this.greeted) {
      this.greeted = true;
      this.onSession(this.agent);
    }
  }

  /** After (re)connecting: the snapshot is the truth about live calls. */
  onSnapshot(cards) {
    const present = new Set(cards.map((card) => card.call_id));
    for (const [id, entry] of this.live) {
      if (!entry.timer && !present.has(id)) this.retire(id);
    }
    for (const card of cards) this.accept(card);
  }

  onEvent(message) {
    const replaced = message.replaces ?? message.call.replaces ?? [];
    for (const id of replaced) this.drop(id);
    this.accept(message.call);
  }

  accept(incoming) {
    const known = this.known.get(incoming.call_id);
    if (newer(known, incoming) !== incoming) return;
    const card = withLookup(incoming, known?.crm ?? this.lateCrm.get(incoming.call_id));
    this.lateCrm.delete(card.call_id);
    this.known.set(card.call_id, card);
    const view = viewOf(card, this.ext);
    const entry = this.live.get(card.call_id);
    if (isLive(view)) this.showLive(card, view, entry);
    else if (entry) this.linger(entry, card, view);
    else this.remember(card);
    if (card.state === "ended") this.refreshHistorySoon();
    if (isLive(view) || entry) this.crm.cardChanged(card, view);
  }

  /** The CRM lookup for a call finished (a "crm" frame). */
  onCrm(callId, crm) {
    const known = this.known.get(callId);
    if (!known) {
      this.lateCrm.set(callId, crm);
      return;
    }
    const card = { ...known, crm };
    this.known.set(callId, card);
    const entry = this.live.get(callId);
    if (!entry) return;
    entry.card = card;
    this.redrawCrm(callId);
    this.crm.cardChanged(card, entry.state);
  }

  redrawCrm(callId) {
    const entry = this.live.get(callId);
    if (!entry) return;
    const live = entry.card.state !== "ended" && !entry.timer;
    const plan = this.crm.plan(entry.card);
    entry.strip.update(plan, { live, home: this.home });
    if (entry.state) entry.view.update(this.named(entry.card, plan), entry.state, this.ctx());
  }

  /** A card whose other side has no caller name takes the name of its CRM record. */
  named(card, plan = this.crm.plan(card)) {
    const record = plan.kind === "chosen" || plan.kind === "single" ? plan.record : null;
    if (!record?.name || remoteParty(card, this.ext).name) return card;
    return { ...card, [card.direction === "outbound" ? "to_name" : "from_name"]: record.name };
  }

  newStrip(callId) {
    return new CrmStrip({
      open: (record) => this.crm.open(callId, record),
      choose: (record) => this.crm.pick(callId, record),
      create: (object, fields) => this.crm.create(callId, object, fields),
      refresh: () => this.redrawCrm(callId),
    });
  }

  // -- live cards --------------------------------------------------------------------------

  showLive(card, view, entry) {
    let current = entry;
    const wasRinging = current?.view.el.dataset.view === "ringing";
    if (!current) {
      const strip = this.newStrip(card.call_id);
      current = { view: new CallCardView(card.call_id), card, timer: null, strip };
      current.view.el.append(strip.el);
      this.live.set(card.call_id, current);
      $("cards").prepend(current.view.el);
    } else if (current.timer) {
      clearTimeout(current.timer);
      current.timer = null;
    }
    current.card = card;
    current.state = view;
    this.redrawCrm(card.call_id);
    if (view.kind === "ringing" && !wasRinging) this.announceIncoming(card);
    this.renderLive();
  }

  /** An ended (or handed-over) card shows its outcome for a few seconds, then moves on. */
  linger(entry, card, view) {
    entry.card = card;
    entry.state = view;
    if (!entry.timer) entry.timer = setTimeout(() => this.retire(card.call_id), LINGER_MS);
    this.redrawCrm(card.call_id);
    this.renderLive();
  }

  /** Move a card from the live area into history. */
  retire(id) {
    const entry = this.live.get(id);
    if (!entry) return;
    this.drop(id);
    this.remember(entry.card);
  }

  /** Take a card off the live area (with a short fade). */
  drop(id) {
    const entry = this.live.get(id);
    if (!entry) return;
    clearTimeout(entry.timer);
    this.live.delete(id);
    const el = entry.view.el;
    el.classList.add("is-leaving");
    window.setTimeout(() => el.remove(), LEAVE_MS);
    this.renderLive();
  }

  /** Ringing calls on top (newest first), then the rest, newest first. */
  orderCards() {
    const entries = [...this.live.values()];
    const rank = (entry) => (entry.view.el.dataset.view === "ringing" ? 0 : 1);
    entries.sort(
      (a, b) => rank(a) - rank(b) || (b.card.started_at ?? 0) - (a.card.started_at ?? 0),
    );
    const container = $("cards");
    const wanted = entries.map((entry) => entry.view.el);
    const shown = [...container.children].filter((el) => !el.classList.contains("is-leaving"));
    if (wanted.every((el, i) => shown[i] === el)) return;
    const leaving = [...container.children].filter((el) => el.classList.contains("is-leaving"));
    container.replaceChildren(...wanted, ...leaving);
  }

  renderLive() {
    this.orderCards();
    const count = this.live.size;
    $("live-empty").hidden = count > 0;
    const badge = $("live-count");
    badge.hidden = count === 0;
    setText(badge, String(count));
    const ringing = [...this.live.values()].find((e) => e.view.el.dataset.view === "ringing");
    document.title = ringing ? `Incoming call · ${this.partyText(ringing.card)}` : this.title;
  }

  /** A short message at the bottom of the panel (tone: info, ok, error). */
  toast(text, tone = "info") {
    const el = $("toast");
    if (!el) return;
    clearTimeout(this.toastTimer);
    el.dataset.tone = tone;
    setText(el, text);
    el.hidden = false;
    this.toastTimer = setTimeout(() => {
      el.hidden = true;
    }, TOAST_MS);
  }

  /** A lasting message above everything (null removes it). */
  banner(text, tone = "error") {
    const el = $("banner");
    if (!el) return;
    el.dataset.tone = tone;
    el.hidden = !text;
    setText(el, text ?? "");
  }

  partyText(card) {
    const party = remoteParty(card, this.ext);
    return party.name || formatNumber(party.number, this.home);
  }

  announceIncoming(card) {
    const party = remoteParty(card, this.ext);
    const number = formatNumber(party.number, this.home);
    const who = party.name ? `${party.name}, ${number}` : number;
    announce($("announcer"), `Incoming call from ${who}`);
  }

  tick() {
    const now = this.now();
    setText($("clock"), clockTime(now));
    for (const entry of this.live.values()) entry.view.tick(now);
  }

  // -- history -----------------------------------------------------------------------------

  remember(card) {
    if ((card.started_at ?? 0) < startOfDay(this.now())) return;
    this.history.set(card.call_id, newer(this.history.get(card.call_id), card));
    this.renderHistory();
  }

  refreshHistorySoon() {
    clearTimeout(this.historyTimer);
    this.historyTimer = setTimeout(() => this.loadHistory(), HISTORY_REFRESH_MS);
  }

  async loadHistory() {
    clearTimeout(this.historyTimer);
    const request = ++this.historyRequest;
    const since = startOfDay(this.now());
    let page;
    try {
      page = await this.api.calls({ since, limit: HISTORY_LIMIT, active: false });
    } catch (exc) {
      if (request !== this.historyRequest) return;
      if (exc.unauthenticated) {
        this.endSession("Your session has expired. Please sign in again.");
        return;
      }
      this.showHistoryError("Today’s calls could not be loaded. Retrying…");
      this.historyTimer = setTimeout(() => this.loadHistory(), HISTORY_RETRY_MS);
      return;
    }
    if (request !== this.historyRequest) return;
    this.showHistoryError(null);
    this.mergeHistory(page.items ?? [], since);
  }

  mergeHistory(items, since) {
    const merged = new Map();
    for (const card of items) merged.set(card.call_id, newer(this.history.get(card.call_id), card));
    for (const [id, card] of this.history) {
      if (!merged.has(id) && card.started_at >= since) merged.set(id, card);
    }
    this.history = merged;
    this.renderHistory();
  }

  renderHistory() {
    const ctx = this.ctx();
    const cards = newestFirst(
      [...this.history.values()].filter((card) => !this.live.has(card.call_id)),
      HISTORY_LIMIT,
    );
    const list = $("history");
    const before = new Set([...list.children].map((row) => row.dataset.callId));
    const media = {
      audio: (callId) => this.players.get(callId),
      player: (callId, url) => this.recordingPlayer(callId, url),
    };
    const rows = cards.map((card) => historyRow(card, ctx, media));
    if (before.size > 0) {
      for (const row of rows) row.classList.toggle("is-new", !before.has(row.dataset.callId));
    }
    list.replaceChildren(...rows);
    const shown = new Set(cards.map((card) => card.call_id));
    for (const [id, audio] of this.players) {
      if (shown.has(id)) continue;
      audio.pause();
      this.players.delete(id);
    }
    $("history-empty").hidden = cards.length > 0;
    this.watchRecordings(cards.some((card) => recordingOf(card)?.state === "pending"));
    const missed = cards.filter((card) => outcomeOf(card, this.ext).tone === "missed").length;
    const count = $("history-count");
    count.hidden = cards.length === 0;
    count.replaceChildren(
      `${cards.length} ${cards.length === 1 ? "call" : "calls"}`,
      missed ? h("span", { class: "count__missed", text: ` · ${missed} missed` }) : "",
    );
  }

  /** While `processing` (a recording on screen is not fetched yet), reload the history now
   *  and then, less and less often; stop once none is. */
  watchRecordings(processing) {
    if (!processing) {
      clearTimeout(this.recordingTimer);
      this.recordingTimer = null;
      this.recordingPolls = 0;
      return;
    }
    if (this.recordingTimer !== null) return;
    const delay = RECORDING_POLL_MS[Math.min(this.recordingPolls, RECORDING_POLL_MS.length - 1)];
    this.recordingPolls += 1;
    this.recordingTimer = setTimeout(() => {
      this.recordingTimer = null;
      this.loadHistory();
    }, delay);
  }

  /** A player for a call's recording in its history row (one per call). */
  recordingPlayer(callId, url) {
    this.players.get(callId)?.pause();
    const audio = h("audio", {
      class: "history-row__audio",
      controls: true,
      preload: "none",
      src: recordingSrc(url, this.tokens.get()),
      data: { testid: "history-audio" },
    });
    this.players.set(callId, audio);
    return audio;
  }

  showHistoryError(message) {
    const el = $("history-error");
    el.hidden = !message;
    el.textContent = message ?? "";
  }

  renderMe() {
    const agent = this.agent;
    setText($("me-name"), agent?.name ?? "Signed in");
    setText($("me-ext"), this.ext ? `Ext. ${this.ext}` : "");
    setText($("me-initials"), initials(agent?.name) || "•");
  }
}

/** The Salesforce origin Lightning passed in the address (`sfdcIframeOrigin`), if any. */
export function salesforceOrigin(search = window.location.search) {
  for (const pair of search.replace(/^\?/, "").split("&")) {
    const [key, value] = pair.split("=");
    if (key === "sfdcIframeOrigin" && value) {
      try {
        return decodeURIComponent(value);
      } catch {
        return null;
      }
    }
  }
  return null;
}

/** A card with the freshest lookup result: a newer card may come without it. */
function withLookup(card, crm) {
  if (!crm || card.direction === "internal") return card;
  if (!card.crm || (card.crm.status === "pending" && crm.status !== "pending")) {
    return { ...card, crm };
  }
  return card;
}

if (document.body.classList.contains("page--softphone")) new Softphone().boot();
