// A WebSocket that keeps itself connected: exponential backoff with jitter, answers the
// server's pings, notices a silent (half-open) connection, stops for good on a bad token.

/** Close codes from the server (see ctibridge/web/ws.py). */
export const CLOSE_NOT_AUTHENTICATED = 4001;
export const CLOSE_FORBIDDEN = 4003;
export const CLOSE_TOO_SLOW = 4008;

const FIRST_DELAY_MS = 1000;
const MAX_DELAY_MS = 30000;
/** The server pings every 25 s; this long without a frame means the link is dead. */
const SILENCE_MS = 65000;

/** Delay before reconnect attempt `attempt` (0, 1, ...): 1 s doubling to 30 s, ±25 % jitter. */
export function backoffDelay(attempt, random = Math.random) {
  const base = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** Math.max(0, attempt));
  return Math.min(MAX_DELAY_MS, Math.round(base * (0.75 + random() * 0.5)));
}

/**
 * Status values given to `onStatus`: "connecting" (first attempt), "connected" (after the
 * server's first frame), "reconnecting", "offline" (the browser has no network) and
 * "stopped" (stop() or a rejected token).
 */
export class ReconnectingSocket {
  constructor({ url, onMessage, onStatus = () => {}, onRejected = () => {}, random = Math.random }) {
    this.url = url;
    this.onMessage = onMessage;
    this.onStatus = onStatus;
    this.onRejected = onRejected;
    this.random = random;
    this.ws = null;
    this.attempt = 0;
    this.retryTimer = null;
    this.silenceTimer = null;
    this.running = false;
    this.status = "stopped";
    this.onOnline = () => this.reconnectNow();
    this.onOffline = () => this.dropped("offline");
  }

  start() {
    if (this.running) return;
    this.running = true;
    window.addEventListener("online", this.onOnline);
    window.addEventListener("offline", this.onOffline);
    this.setStatus("connecting");
    this.open();
  }

  stop() {
    this.running = false;
    window.removeEventListener("online", this.onOnline);
    window.removeEventListener("offline", this.onOffline);
    clearTimeout(this.retryTimer);
    clearTimeout(this.silenceTimer);
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(1000, "bye");
    this.setStatus("stopped");
  }

  /** Send a JSON message if connected; returns whether it went. */
  send(message) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }

  /** Skip the remaining backoff (the network came back). */
  reconnectNow() {
    if (!this.running || (this.ws && this.ws.readyState <= WebSocket.OPEN)) return;
    clearTimeout(this.retryTimer);
    this.open();
  }

  setStatus(status) {
    if (status === this.status) return;
    this.status = status;
    this.onStatus(status);
  }

  open() {
    let ws;
    try {
      ws = new WebSocket(this.url());
    } catch {
      this.scheduleRetry();
      return;
    }
    this.ws = ws;
    ws.addEventListener("message", (event) => this.received(ws, event));
    ws.addEventListener("close", (event) => this.closed(ws, event));
    this.armSilenceTimer(ws);
  }

  received(ws, event) {
    if (ws !== this.ws) return;
    this.armSilenceTimer(ws);
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    if (this.status !== "connected") {
      this.attempt = 0;
      this.setStatus("connected");
    }
    if (message.type === "ping") this.send({ type: "pong" });
    this.onMessage(message);
  }

  closed(ws, event) {
    if (ws !== this.ws) return;
    this.ws = null;
    clearTimeout(this.silenceTimer);
    if (!this.running) return;
    if (event.code === CLOSE_NOT_AUTHENTICATED || event.code === CLOSE_FORBIDDEN) {
      this.stop();
      this.onRejected(event.code, event.reason);
      return;
    }
    this.scheduleRetry();
  }

  /** The link is gone (the browser went offline, or the server fell silent). */
  dropped(status) {
    const ws = this.ws;
    if (!this.running) return;
    this.ws = null;
    clearTimeout(this.silenceTimer);
    if (ws) ws.close(4000, "reconnecting");
    this.scheduleRetry(status);
  }

  scheduleRetry(status = null) {
    clearTimeout(this.retryTimer);
    const offline = navigator.onLine === false;
    this.setStatus(status ?? (offline ? "offline" : "reconnecting"));
    const delay = backoffDelay(this.attempt, this.random);
    this.attempt += 1;
    this.retryTimer = setTimeout(() => {
      if (this.running) this.open();
    }, delay);
  }

  armSilenceTimer(ws) {
    clearTimeout(this.silenceTimer);
    this.silenceTimer = setTimeout(() => {
      if (ws === this.ws) this.dropped(null);
    }, SILENCE_MS);
  }
}
