// The admin view's table rows and agent list items, and what an agent is doing right now.
// `ctx` is {home, label, now}: the home calling code for number formats, extension → label,
// and the server's clock (unix seconds).

import {
  directionOf,
  formatNumber,
  formatTalk,
  homeCountry,
  initials,
  outcomeOf,
  viewOf,
} from "./calls.js";
import { clockTime, dayAndTime, h, icon } from "./ui.js";

/** What an agent is doing, from the live calls: {key, label, tone}. */
export function presenceOf(agent, liveCards) {
  if (!agent.active) return { key: "inactive", label: "Inactive", tone: "muted" };
  const ext = agent.extension;
  let ringing = false;
  for (const card of liveCards) {
    if (card.state === "ended" || !ext) continue;
    if ((card.current ?? []).includes(ext) && card.state !== "ringing") {
      return card.state === "held"
        ? { key: "held", label: "On hold", tone: "held" }
        : { key: "busy", label: "On a call", tone: "connected" };
    }
    if (card.state === "ringing" && (card.rung ?? []).includes(ext)) ringing = true;
  }
  if (ringing) return { key: "ringing", label: "Ringing", tone: "ringing" };
  return { key: "available", label: "Available", tone: "muted" };
}

/** The presence statuses ctibridge holds (`GET /api/presence`, `presence` frames). */
const STATUSES = {
  available: { label: "Available", tone: "muted" },
  busy: { label: "Busy", tone: "missed" },
  away: { label: "Away", tone: "away" },
  on_call: { label: "On a call", tone: "connected" },
};

/**
 * What the agents list shows: the agent's call activity when it has one (ringing, on a call,
 * on hold), else the presence status it chose ({status, since} from the server, or null).
 */
export function shownPresence(activity, status) {
  if (activity.key !== "available" || !status) return activity;
  return { key: activity.key, ...(STATUSES[status.status] ?? STATUSES.available) };
}

/** The calling code most of a tenant's agents work in, or null. */
export function tenantHome(agents) {
  const votes = new Map();
  for (const agent of agents) {
    const code = homeCountry(agent.timezone);
    if (code) votes.set(code, (votes.get(code) ?? 0) + 1);
  }
  return [...votes.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? null;
}

/** Who is on a live call: the rung phones while it rings, then whoever is connected. */
function handlers(card) {
  const current = card.current ?? [];
  if (card.state === "ringing") return card.rung ?? [];
  return current.length ? current : (card.agents ?? []);
}

function partyCell(name, number, home) {
  const formatted = formatNumber(number, home);
  return h(
    "td",
    { class: "party-cell" },
    h("div", { class: "party-cell__name", text: name || formatted }),
    name ? h("div", { class: "party-cell__number", text: formatted }) : null,
  );
}

function directionChip(card) {
  const direction = directionOf(card);
  return h(
    "span",
    { class: `dir-chip dir-chip--${direction.key}`, attrs: { title: direction.label } },
    icon(direction.key),
    h("span", { class: "sr-only", text: direction.label }),
  );
}

function agentsCell(extensions, label) {
  return h("td", { class: "agents-cell", text: extensions.map(label).join(", ") || "—" });
}

/** A live call: returns {row, timerCell} (the page ticks the timer). */
export function liveRow(card, { home, label }) {
  const view = viewOf(card, null);
  const timerCell = h("td", { class: "num timer-cell", data: { testid: "call-timer" } });
  const state = h(
    "span",
    { class: "badge badge--small", data: { tone: view.tone, testid: "call-state" } },
    h("span", { class: "badge__dot", attrs: { "aria-hidden": "true" } }),
    h("span", { class: "badge__text", text: view.badge }),
  );
  const row = h(
    "tr",
    { data: { testid: "live-call", callId: card.call_id, state: card.state, tone: view.tone } },
    h("td", {}, h("div", { class: "state-cell" }, state, directionChip(card))),
    partyCell(card.from_name, card.from_number, home),
    partyCell(card.to_name, card.to_number, home),
    agentsCell(handlers(card), label),
    timerCell,
  );
  return { row, timerCell };
}

/** A finished call in the recent calls table. */
export function recentRow(card, { home, label, now }) {
  const outcome = outcomeOf(card, null);
  const talk = card.answered_at && card.talk_seconds >= 1 ? formatTalk(card.talk_seconds) : "—";
  return h(
    "tr",
    { data: { testid: "recent-row", callId: card.call_id, tone: outcome.tone } },
    h(
      "td",
      { class: "when-cell" },
      directionChip(card),
      h("time", { text: dayAndTime(card.started_at, now) }),
    ),
    partyCell(card.from_name, card.from_number, home),
    partyCell(card.to_name, card.to_number, home),
    agentsCell(card.agents ?? [], label),
    h("td", { class: "num", text: talk }),
    h(
      "td",
      {},
      h("span", {
        class: "outcome",
        data: { tone: outcome.tone, testid: "outcome" },
        text: outcome.label,
      }),
    ),
  );
}

/**
 * One agent with what they are doing: `data-presence` is the call activity (from the live
 * calls), `data-status` the presence status ctibridge holds for the agent.
 */
export function agentItem(agent, activity, status = null) {
  const meta = [agent.extension ? `Ext. ${agent.extension}` : null, agent.login];
  const presence = shownPresence(activity, status);
  const fromStatus = presence !== activity && status.since;
  const since = fromStatus ? `${presence.label} since ${clockTime(status.since)}` : null;
  return h(
    "li",
    {
      class: "agent",
      data: {
        testid: "agent-row",
        extension: agent.extension ?? "",
        presence: activity.key,
        status: status?.status ?? "",
      },
    },
    h("span", {
      class: "avatar avatar--small",
      data: { tone: presence.tone },
      text: initials(agent.name),
    }),
    h(
      "div",
      { class: "agent__main" },
      h("div", { class: "agent__name", text: agent.name }),
      h("div", { class: "agent__meta", text: meta.filter(Boolean).join(" · ") }),
    ),
    h("span", {
      class: "presence",
      data: { tone: presence.tone, testid: "presence" },
      attrs: { title: since },
      text: presence.label,
    }),
  );
}
