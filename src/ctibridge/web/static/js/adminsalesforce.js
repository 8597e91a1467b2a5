// The admin view's Salesforce panel: the tenant's org connection (status, connect,
// disconnect) and matching agents to Salesforce users, with the report of the last match.

import { dayAndTime, h, setText } from "./ui.js";

const $ = (role) => document.querySelector(`[data-role="${role}"]`);
const CONFIRM_MS = 4000;

const BY = { federation_id: "federation id", email: "e-mail", existing: "kept" };

function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

function hostOf(url) {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

function userLabel(user) {
  if (!user) return "—";
  const name = user.name || user.username || user.id || "—";
  return user.name && user.username ? `${name} (${user.username})` : name;
}

export class SalesforcePanel {
  /** `api`: the page's Api; `now()`: server time (s); `onAgentsChanged()`: reload agents. */
  constructor(api, { now, onAgentsChanged, onRejected }) {
    this.api = api;
    this.now = now;
    this.onAgentsChanged = onAgentsChanged;
    this.onRejected = onRejected;
    this.tenant = null;
    this.status = null;
    this.request = 0;
    this.confirmTimer = null;
  }

  boot() {
    $("sf-connect").addEventListener("click", () => this.connect());
    $("sf-match").addEventListener("click", () => this.match());
    $("sf-disconnect").addEventListener("click", () => this.disconnect());
  }

  /** Show `tenant`'s connection (null: nothing to show). */
  async show(tenant) {
    if (tenant !== this.tenant) $("sf-report").hidden = true;
    this.tenant = tenant;
    if (!tenant) {
      $("sf-panel").hidden = true;
      return;
    }
    await this.load();
  }

  async load() {
    const request = ++this.request;
    const tenant = this.tenant;
    let status;
    try {
      status = await this.api.request("GET", "/api/salesforce/status", { params: { tenant } });
    } catch (exc) {
      if (request !== this.request) return;
      if (exc.unauthenticated) return this.onRejected();
      this.status = null;
      $("sf-panel").hidden = false;
      this.notice(`The Salesforce connection could not be read: ${exc.message}`, "error");
      return;
    }
    if (request !== this.request) return;
    this.status = status;
    this.render();
  }

  render() {
    const status = this.status;
    $("sf-panel").hidden = !status?.enabled;
    if (!status?.enabled) return;
    const state = $("sf-state");
    const problem = Boolean(status.problem);
    state.dataset.state = status.connected ? "connected" : problem ? "problem" : "disconnected";
    state.dataset.tone = status.connected ? "connected" : problem ? "missed" : "muted";
    setText(
      state.querySelector(".badge__text"),
      status.connected ? "Connected" : problem ? "Needs attention" : "Not connected",
    );
    this.renderFacts(status);
    const own = status.source === "tenant";
    const connect = $("sf-connect");
    connect.disabled = !status.can_connect;
    connect.classList.toggle("button--go", !status.connected);
    setText(connect, own ? "Reconnect Salesforce" : "Connect Salesforce");
    $("sf-match").hidden = !status.connected;
    // The Call Center definition to import in Salesforce (a download: the token rides along).
    const xml = new URLSearchParams({ tenant: this.tenant ?? "", token: this.api.tokens.get() ?? "" });
    $("sf-xml").href = `/api/salesforce/callcenter.xml?${xml}`;
    $("sf-disconnect").hidden = !own;
    this.resetConfirm();
    let hint = "";
    if (!status.can_connect) {
      hint = "Set salesforce.client_id (the app’s consumer key) in the configuration first.";
    } else if (status.source === "config") {
      hint = "Signed in as the integration user of the configuration file (JWT bearer flow).";
    } else if (!status.connected) {
      hint = "Connect the org as a Salesforce administrator: ctibridge keeps a refresh token.";
    }
    setText($("sf-hint"), hint);
    if (problem) this.notice(status.problem, "error");
  }

  renderFacts(status) {
    const facts = $("sf-facts");
    facts.hidden = !status.connected;
    if (!status.connected) return;
    const instance = status.instance_url || status.login_url || "";
    $("sf-instance").replaceChildren(
      instance
        ? h("a", {
            class: "sf-link",
            text: hostOf(instance),
            attrs: { href: instance, target: "_blank", rel: "noopener noreferrer" },
          })
        : "—",
    );
    setText($("sf-user"), userLabel(status.user));
    const usage = status.api_usage;
    setText(
      $("sf-usage"),
      usage ? `${usage.used.toLocaleString()} of ${usage.max.toLocaleString()} (24 h)` : "Not known yet",
    );
    setText($("sf-since"), status.connected_at ? dayAndTime(status.connected_at, this.now()) : "—");
    $("sf-since-row").hidden = !status.connected_at;
  }

  notice(message, tone = "info") {
    const el = $("sf-notice");
    el.hidden = !message;
    el.textContent = message ?? "";
    el.dataset.tone = tone;
  }

  /** Salesforce sent the admin back here connected (`#salesforce=connected`). */
  connected() {
    this.notice("Salesforce is connected.", "info");
  }

  async connect() {
    const button = $("sf-connect");
    button.disabled = true;
    try {
      const params = { tenant: this.tenant };
      const { authorize_url: url } = await this.api.request("GET", "/api/salesforce/connect", {
        params,
      });
      window.location.assign(url);
    } catch (exc) {
      if (exc.unauthenticated) return this.onRejected();
      this.notice(`Salesforce cannot be connected: ${exc.message}`, "error");
      button.disabled = false;
    }
  }

  async match() {
    const button = $("sf-match");
    button.disabled = true;
    this.notice(null);
    try {
      const params = { tenant: this.tenant };
      const report = await this.api.request("POST", "/api/salesforce/match-users", { params });
      this.renderReport(report);
      this.onAgentsChanged();
    } catch (exc) {
      if (exc.unauthenticated) return this.onRejected();
      this.notice(`Agents could not be matched: ${exc.message}`, "error");
    } finally {
      button.disabled = false;
    }
    this.load();
  }

  async disconnect() {
    const button = $("sf-disconnect");
    if (!button.dataset.confirm) {
      button.dataset.confirm = "yes";
      setText(button, "Click again to disconnect");
      this.confirmTimer = setTimeout(() => this.resetConfirm(), CONFIRM_MS);
      return;
    }
    this.resetConfirm();
    try {
      const params = { tenant: this.tenant };
      await this.api.request("DELETE", "/api/salesforce/connection", { params });
      $("sf-report").hidden = true;
      this.notice("Salesforce is disconnected: calls are no longer logged there.", "info");
    } catch (exc) {
      if (exc.unauthenticated) return this.onRejected();
      this.notice(`Salesforce could not be disconnected: ${exc.message}`, "error");
    }
    this.load();
  }

  resetConfirm() {
    clearTimeout(this.confirmTimer);
    const button = $("sf-disconnect");
    delete button.dataset.confirm;
    setText(button, "Disconnect");
  }

  renderReport(report) {
    const count = (key, label, tone) =>
      h("span", {
        class: "sf-count",
        data: { tone, testid: `sf-${key}` },
        text: `${report[key].length} ${label}`,
      });
    const rows = [
      ...report.matched.map((m) => this.row(m, "matched", m.user.name || m.crm_user_id, BY[m.by])),
      ...report.ambiguous.map((m) =>
        this.row(
          m,
          "ambiguous",
          `${plural(m.candidates.length, "user", "users")}: ${m.candidates.map((c) => c.name).join(", ")}`,
          "set one by hand",
        ),
      ),
      ...report.unmatched.map((m) =>
        this.row(
          m,
          "unmatched",
          m.email ? `No active user with ${m.email}` : "No e-mail address to look for",
          "not found",
        ),
      ),
    ];
    $("sf-report").replaceChildren(
      h(
        "div",
        { class: "sf-report__summary" },
        count("matched", "matched", "connected"),
        count("ambiguous", "ambiguous", "away"),
        count("unmatched", "unmatched", "muted"),
        h("span", {
          class: "sf-report__of",
          text: `of ${plural(report.users, "active Salesforce user", "active Salesforce users")}`,
        }),
      ),
      h("ul", { class: "sf-list" }, rows),
    );
    $("sf-report").hidden = false;
  }

  row(entry, outcome, found, note) {
    return h(
      "li",
      { class: "sf-list__row", data: { testid: "sf-report-row", agentId: entry.agent_id, outcome } },
      h("span", { class: "sf-list__agent", text: entry.name }),
      h("span", { class: "sf-list__found", text: found }),
      h("span", { class: "sf-list__note", text: note ?? "" }),
    );
  }
}
