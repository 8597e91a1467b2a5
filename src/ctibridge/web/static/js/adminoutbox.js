// The admin view's panel of CRM writes that failed: call logs waiting in the outbox for
// another attempt (a Salesforce validation rule refused the Task, say), each with the CRM's
// own words, and what the admin can do about one: retry it now, or discard it (click twice).
// GET /api/outbox/failed, POST /api/outbox/{id}/retry|discard (services/outbox_admin.py).

import { dayAndTime, h, icon, setText } from "./ui.js";

const $ = (role) => document.querySelector(`[data-role="${role}"]`);
const POLL_MS = 15000;
const AFTER_CALL_MS = 1500;
const CONFIRM_MS = 4000;

const KINDS = { call_log: "Call log" };
const CRMS = { salesforce: "Salesforce", builtin: "the built-in CRM" };

/** "next try in 45 s", "… in 12 min", "… in 3 h"; "next try now" once due. */
export function nextTryText(seconds) {
  if (!Number.isFinite(seconds) || seconds <= 1) return "next try now";
  if (seconds < 90) return `next try in ${Math.round(seconds)} s`;
  if (seconds < 90 * 60) return `next try in ${Math.round(seconds / 60)} min`;
  return `next try in ${Math.round(seconds / 3600)} h`;
}

function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

function crmName(crm) {
  return CRMS[crm] ?? (crm ? crm : "the CRM");
}

function capital(text) {
  return `${text[0].toUpperCase()}${text.slice(1)}`;
}

export class OutboxPanel {
  /** `api`: the page's Api; `now()`: server time (s); `onRejected()`: the token is refused. */
  constructor(api, { now, onRejected }) {
    this.api = api;
    this.now = now;
    this.onRejected = onRejected;
    this.tenant = null;
    this.state = null; // the last answer of GET /api/outbox/failed
    this.request = 0;
    this.timer = null;
    this.busy = new Set(); // item ids with an action under way
  }

  boot() {
    $("outbox-refresh").addEventListener("click", () => this.load());
    window.setInterval(() => {
      if (this.tenant && document.visibilityState === "visible") this.load();
    }, POLL_MS);
  }

  /** Show `tenant`'s failed writes (null: nothing to show). */
  show(tenant) {
    if (tenant !== this.tenant) {
      this.state = null;
      this.notice(null);
    }
    this.tenant = tenant;
    if (!tenant) {
      $("outbox-panel").hidden = true;
      return;
    }
    this.load();
  }

  /** A call just ended: its log is written within moments; look again shortly. */
  refreshSoon() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.load(), AFTER_CALL_MS);
  }

  async load() {
    if (!this.tenant) return;
    const request = ++this.request;
    let state;
    try {
      state = await this.api.request("GET", "/api/outbox/failed", {
        params: { tenant: this.tenant },
      });
    } catch (exc) {
      if (request !== this.request) return;
      if (exc.unauthenticated) return this.onRejected();
      $("outbox-panel").hidden = false;
      this.notice(`Failed writes could not be read: ${exc.message}`, "error");
      return;
    }
    if (request !== this.request) return;
    this.state = state;
    this.render();
  }

  render() {
    const state = this.state;
    $("outbox-panel").hidden = !state?.enabled;
    if (!state?.enabled) return;
    const crm = crmName(state.crm);
    const items = state.items ?? [];
    setText($("outbox-title"), `${state.crm === "salesforce" ? "Salesforce" : "CRM"} writes that failed`);
    const count = $("outbox-count");
    count.hidden = !state.total;
    setText(count, String(state.total ?? 0));
    $("outbox-empty").hidden = items.length > 0;
    setText($("outbox-empty-text"), `Nothing waiting: every call log was written to ${crm}.`);
    const lede = $("outbox-lede");
    lede.hidden = items.length === 0;
    setText(
      lede,
      `${plural(state.total, "call log", "call logs")} could not be written to ${crm}. ` +
        "ctibridge tries again with growing pauses. Once the cause is fixed, retry now; " +
        "discard a log that should never be written.",
    );
    const more = $("outbox-more");
    more.hidden = state.total <= items.length;
    setText(more, `Showing the newest ${items.length} of ${state.total}.`);
    $("outbox-list").replaceChildren(...items.map((item) => this.row(item, crm)));
  }

  row(item, crm) {
    const now = this.now();
    const busy = this.busy.has(item.item_id);
    const who = item.agent_name || item.agent_id || "Unknown agent";
    const meta = [who, item.call_id ? `call ${item.call_id}` : null, `queued ${dayAndTime(item.created_at, now)}`];
    const retry = h(
      "button",
      {
        class: "button button--small button--go",
        type: "button",
        disabled: busy,
        data: { testid: "outbox-retry" },
        on: { click: (event) => this.retry(item, event.currentTarget) },
      },
      icon("refresh"),
      h("span", { text: "Retry now" }),
    );
    const discard = h("button", {
      class: "button button--small button--danger",
      type: "button",
      disabled: busy,
      text: "Discard",
      data: { testid: "outbox-discard" },
      on: { click: (event) => this.discard(item, event.currentTarget) },
    });
    return h(
      "li",
      { class: "outbox-item", data: { testid: "outbox-item", itemId: item.item_id, kind: item.kind } },
      h(
        "div",
        { class: "outbox-item__main" },
        h(
          "div",
          { class: "outbox-item__head" },
          h("span", { class: "outbox-item__kind", text: KINDS[item.kind] ?? item.kind }),
          h("span", {
            class: "outbox-item__subject",
            text: item.subject || item.key,
            data: { testid: "outbox-subject" },
          }),
        ),
        h("div", { class: "outbox-item__meta", text: meta.filter(Boolean).join(" · ") }),
        h(
          "div",
          { class: "outbox-item__error", data: { testid: "outbox-error" } },
          h("span", { class: "outbox-item__said", text: `${capital(crm)} said` }),
          item.error_code
            ? h("code", {
                class: "outbox-item__code",
                text: item.error_code,
                data: { testid: "outbox-error-code" },
              })
            : null,
          h("span", {
            class: "outbox-item__message",
            text: item.last_error || "no reason given",
            data: { testid: "outbox-error-message" },
          }),
        ),
      ),
      h(
        "div",
        { class: "outbox-item__side" },
        h(
          "div",
          { class: "outbox-item__tries", data: { testid: "outbox-attempts" } },
          h("strong", { text: plural(item.attempts, "attempt", "attempts") }),
          h("span", {
            text: nextTryText(item.next_attempt_at - now),
            attrs: { title: `Next attempt ${dayAndTime(item.next_attempt_at, now)}` },
          }),
        ),
        h("div", { class: "outbox-item__actions" }, retry, discard),
      ),
    );
  }

  notice(message, tone = "info") {
    const el = $("outbox-notice");
    el.hidden = !message;
    el.textContent = message ?? "";
    el.dataset.tone = tone;
  }

  async retry(item, button) {
    this.busy.add(item.item_id);
    button.disabled = true;
    setText(button.querySelector("span"), "Retrying…");
    const crm = crmName(this.state?.crm);
    try {
      const path = `/api/outbox/${item.item_id}/retry`;
      const result = await this.api.request("POST", path, { params: { tenant: this.tenant } });
      if (result.delivered) this.notice(`Written to ${crm}: ${item.subject || item.key}.`, "info");
      else this.notice(`${capital(crm)} refused it again: ${result.item.last_error}`, "error");
    } catch (exc) {
      if (exc.unauthenticated) return this.onRejected();
      this.notice(`The retry could not be made: ${exc.message}`, "error");
    } finally {
      this.busy.delete(item.item_id);
    }
    await this.load();
  }

  async discard(item, button) {
    if (!button.dataset.confirm) {
      button.dataset.confirm = "yes";
      button.textContent = "Click again to discard";
      setTimeout(() => {
        if (!button.isConnected) return;
        delete button.dataset.confirm;
        button.textContent = "Discard";
      }, CONFIRM_MS);
      return;
    }
    this.busy.add(item.item_id);
    button.disabled = true;
    try {
      const path = `/api/outbox/${item.item_id}/discard`;
      await this.api.request("POST", path, { params: { tenant: this.tenant } });
      this.notice(`Discarded: ${item.subject || item.key} will not be written.`, "info");
    } catch (exc) {
      if (exc.unauthenticated) return this.onRejected();
      this.notice(`It could not be discarded: ${exc.message}`, "error");
    } finally {
      this.busy.delete(item.item_id);
    }
    await this.load();
  }
}
