// The DOM of a live call card and of a history row. Cards are built once and updated in
// place, so animations (the ringing pulse) do not restart on every event.

import {
  directionOf,
  formatDuration,
  formatNumber,
  formatTalk,
  initials,
  isExtension,
  notesOf,
  outcomeOf,
  remoteParty,
  timerSeconds,
} from "./calls.js";
import { clockTime, h, icon, setAttr, setText } from "./ui.js";

/** The line a caller dialled (inbound calls to a number that is not an extension). */
function dialledLine(card, home) {
  if (card.direction !== "inbound" || !card.to_number || isExtension(card.to_number)) return null;
  return `Called ${formatNumber(card.to_number, home)}`;
}

function partyLabel(party, home) {
  const number = formatNumber(party.number, home);
  return { name: party.name || null, number };
}

/** One live call card. `update(card, view, ctx)` after every change, `tick(now)` each second. */
export class CallCardView {
  constructor(callId) {
    this.card = null;
    this.dirIcon = h("span", { class: "direction__icon" });
    this.dirLabel = h("span", { class: "direction__label" });
    this.direction = h("span", { class: "direction" }, this.dirIcon, this.dirLabel);
    this.badgeText = h("span", { class: "badge__text" });
    this.badge = h(
      "span",
      { class: "badge", data: { testid: "call-state" } },
      h("span", { class: "badge__dot", attrs: { "aria-hidden": "true" } }),
      this.badgeText,
    );
    this.avatar = h("span", { class: "avatar", attrs: { "aria-hidden": "true" } });
    this.name = h("div", { class: "party__name", data: { testid: "call-name" } });
    this.number = h("div", { class: "party__number", data: { testid: "call-number" } });
    this.timer = h("div", {
      class: "timer",
      data: { testid: "call-timer" },
      attrs: { role: "timer", "aria-live": "off" },
    });
    this.notes = h("ul", { class: "call-card__notes" });
    this.el = h(
      "article",
      { class: "call-card is-entering", data: { testid: "call-card", callId } },
      h("div", { class: "call-card__top" }, this.direction, this.badge),
      h(
        "div",
        { class: "call-card__body" },
        this.avatar,
        h("div", { class: "party" }, this.name, this.number),
        this.timer,
      ),
      this.notes,
    );
    this.el.addEventListener("animationend", () => this.el.classList.remove("is-entering"), {
      once: true,
    });
  }

  update(card, view, { ext, home, now }) {
    this.card = card;
    const el = this.el;
    setAttr(el, "data-state", card.state);
    setAttr(el, "data-view", view.kind);
    setAttr(el, "data-tone", view.tone);
    const direction = directionOf(card);
    if (this.direction.dataset.direction !== direction.key) {
      this.direction.dataset.direction = direction.key;
      this.dirIcon.replaceChildren(icon(direction.key));
    }
    setText(this.dirLabel, direction.label);
    this.badge.dataset.tone = view.tone;
    setText(this.badgeText, view.badge);
    this.showParty(remoteParty(card, ext), home);
    this.showNotes([dialledLine(card, home), ...notesOf(card, ext)].filter(Boolean));
    setAttr(el, "aria-label", this.describe(direction, view, home, ext));
    this.tick(now);
  }

  showParty(party, home) {
    const label = partyLabel(party, home);
    this.el.classList.toggle("is-anonymous", !label.name);
    setText(this.name, label.name ?? label.number);
    setText(this.number, label.number);
    const letters = initials(label.name);
    if (this.avatar.dataset.letters !== letters) {
      this.avatar.dataset.letters = letters;
      this.avatar.replaceChildren(letters || icon("user"));
    }
  }

  showNotes(lines) {
    const current = [...this.notes.children].map((li) => li.textContent).join("\n");
    if (current === lines.join("\n")) return;
    this.notes.replaceChildren(...lines.map((line) => h("li", { text: line })));
    this.notes.hidden = lines.length === 0;
  }

  describe(direction, view, home, ext) {
    const party = partyLabel(remoteParty(this.card, ext), home);
    const who = party.name ? `${party.name}, ${party.number}` : party.number;
    return `${direction.label} call, ${view.badge}: ${who}`;
  }

  tick(now) {
    if (this.card) setText(this.timer, formatDuration(timerSeconds(this.card, now)));
  }
}

/** Where `<audio>` loads a recording of ours from: the API wants the agent's token, and
 *  a media element can only send it as `?token=` (same origin only, as the console does). */
export function recordingSrc(url, token) {
  if (!url.startsWith("/") || !token) return url;
  return `${url}${url.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}`;
}

/** What a call's recordings offer: `{state, url}` with `state` "stored" (play `url`),
 *  "pending" (ctibridge has not fetched it yet) or "failed" (it gave up); null: none. A
 *  link without a state is one ctibridge does not fetch: it plays as it is. */
export function recordingOf(card) {
  const links = (card.recordings ?? []).filter((recording) => recording?.url);
  if (links.length === 0) return null;
  const ready = links.find((link) => !link.state || link.state === "stored");
  if (ready) return { state: "stored", url: ready.url };
  const pending = links.some((link) => link.state === "pending");
  return { state: pending ? "pending" : "failed", url: null };
}

/** In place of a play button, for a recording that cannot be played (yet). */
export function recordingNote(state, { className, testid }) {
  const pending = state === "pending";
  return h(
    "span",
    {
      class: `recording-note ${className}`,
      data: { testid, state },
      attrs: {
        role: "status",
        title: pending
          ? "The recording is being fetched from the phone system"
          : "The recording could not be fetched from the phone system",
      },
    },
    icon(pending ? "history" : "cloud"),
    h("span", { text: pending ? "Recording — processing…" : "Recording unavailable" }),
  );
}

/** A history row's play button and the slot its player goes in (null: no recording). A
 *  recording not stored yet (or given up) shows a note instead, with no slot.
 *  `media.audio(callId)`: the player already made for the call (kept across redraws, so
 *  playback goes on); `media.player(callId, url)`: a new `<audio>` for the call. */
function recordingControls(card, media) {
  const recording = media ? recordingOf(card) : null;
  if (!recording) return [null, null];
  if (recording.state !== "stored") {
    const note = recordingNote(recording.state, {
      className: "history-row__recording",
      testid: "history-recording",
    });
    return [note, null];
  }
  const url = recording.url;
  const existing = media.audio(card.call_id) ?? null;
  const slot = h("div", { class: "history-row__media" }, existing);
  const button = h(
    "button",
    {
      class: "history-row__play",
      type: "button",
      hidden: Boolean(existing),
      data: { testid: "history-recording", state: "stored" },
      attrs: { title: "Play the recording of this call", "aria-label": "Play recording" },
      on: {
        click: () => {
          const audio = media.player(card.call_id, url);
          slot.replaceChildren(audio);
          button.hidden = true;
          audio.play().catch(() => {});
        },
      },
    },
    icon("play"),
    h("span", { text: "Recording" }),
  );
  return [button, slot];
}

/** One row of the history list (`media`: how recordings play; none: no play buttons). */
export function historyRow(card, { ext, home }, media = null) {
  const direction = directionOf(card);
  const outcome = outcomeOf(card, ext);
  const party = partyLabel(remoteParty(card, ext), home);
  const talk = card.answered_at && card.talk_seconds >= 1 ? formatTalk(card.talk_seconds) : null;
  const missed = outcome.tone === "missed";
  const [play, slot] = recordingControls(card, media);
  return h(
    "li",
    {
      class: `history-row${missed ? " is-missed" : ""}`,
      data: { testid: "history-row", callId: card.call_id, tone: outcome.tone },
    },
    h(
      "span",
      {
        class: `history-row__icon history-row__icon--${direction.key}`,
        attrs: { title: direction.label },
      },
      icon(direction.key),
      h("span", { class: "sr-only", text: `${direction.label}, ` }),
    ),
    h(
      "div",
      { class: "history-row__main" },
      h("div", { class: "history-row__name", text: party.name ?? party.number }),
      h("div", { class: "history-row__sub", text: party.name ? party.number : direction.label }),
      play,
    ),
    h(
      "div",
      { class: "history-row__side" },
      h("time", {
        class: "history-row__time",
        text: clockTime(card.started_at),
        attrs: { datetime: new Date(card.started_at * 1000).toISOString() },
      }),
      h(
        "div",
        { class: "history-row__outcome" },
        h("span", { class: "history-row__result", data: { testid: "history-outcome" }, text: outcome.label }),
        talk && !missed ? h("span", { class: "history-row__talk", text: ` · ${talk}` }) : null,
      ),
    ),
    slot,
  );
}
