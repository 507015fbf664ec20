// A WebSocket that reconnects by itself, says hello again with what it has seen, and
// resends unacknowledged messages (same client_id, so the server stores each once).

const MIN_DELAY = 500;
const MAX_DELAY = 10000;
const PING_EVERY = 25000;
const UNAUTHORIZED = 4401;

export function wsUrl(path) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

export function newClientId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

export class Connection {
  // hello(): the hello frame to send on every (re)connect.
  // onFrame(frame), onStatus("connecting"|"online"|"offline"|"unauthorized")
  // outboxKey: localStorage key that keeps unacknowledged messages across reloads.
  constructor({ path, hello, onFrame, onStatus, outboxKey }) {
    Object.assign(this, { path, hello, onFrame, onStatus, outboxKey });
    this.delay = MIN_DELAY;
    this.ws = null;
    this.ready = false;
    this.stopped = false;
    this.outbox = this.loadOutbox();
    window.addEventListener("online", () => this.reconnectNow());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.reconnectNow();
    });
  }

  loadOutbox() {
    try {
      return JSON.parse(localStorage.getItem(this.outboxKey) || "[]");
    } catch {
      return [];
    }
  }

  saveOutbox() {
    localStorage.setItem(this.outboxKey, JSON.stringify(this.outbox));
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    if (this.ws) this.ws.close();
  }

  connect() {
    clearTimeout(this.retryTimer);
    this.onStatus("connecting");
    const ws = new WebSocket(wsUrl(this.path));
    this.ws = ws;
    this.ready = false;
    ws.onopen = () => {
      ws.send(JSON.stringify(this.hello()));
    };
    ws.onmessage = (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      this.lastHeard = Date.now();
      if (frame.type === "welcome") {
        this.ready = true;
        this.delay = MIN_DELAY;
        this.onStatus("online");
        this.onFrame(frame);
        this.flush();
        return;
      }
      if (frame.type === "message") this.acknowledge(frame.client_id);
      if (frame.type !== "pong") this.onFrame(frame);
    };
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.ready = false;
      clearInterval(this.pingTimer);
      if (event.code === UNAUTHORIZED) {
        this.onStatus("unauthorized");
        return;
      }
      if (this.stopped) return;
      this.onStatus("offline");
      this.retryTimer = setTimeout(() => this.connect(), this.delay * (0.75 + Math.random() / 2));
      this.delay = Math.min(this.delay * 2, MAX_DELAY);
    };
    clearInterval(this.pingTimer);
    this.lastHeard = Date.now();
    this.pingTimer = setInterval(() => this.heartbeat(ws), PING_EVERY);
  }

  heartbeat(ws) {
    if (ws.readyState !== WebSocket.OPEN) return;
    // A phone that slept can hold a dead socket that never closes: notice and reconnect.
    if (Date.now() - this.lastHeard > PING_EVERY * 2) {
      ws.close();
      return;
    }
    ws.send(JSON.stringify({ type: "ping" }));
  }

  reconnectNow() {
    if (this.stopped) return;
    if (!this.ws || this.ws.readyState === WebSocket.CLOSED) {
      this.delay = MIN_DELAY;
      this.connect();
    }
  }

  send(frame) {
    if (this.ready && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  // A chat message: kept until the server echoes it with the same client_id.
  sendMessage(frame) {
    const message = { ...frame, type: "message", client_id: frame.client_id || newClientId() };
    this.outbox.push(message);
    this.saveOutbox();
    this.send(message);
    return message;
  }

  acknowledge(clientId) {
    const before = this.outbox.length;
    this.outbox = this.outbox.filter((m) => m.client_id !== clientId);
    if (this.outbox.length !== before) this.saveOutbox();
  }

  // Drop an unsendable message (the server refused it: too long, conversation ended).
  discard(clientId) {
    this.acknowledge(clientId);
  }

  flush() {
    for (const message of this.outbox) this.send(message);
  }
}
