// One conversation on screen: messages in seq order (each once), pending messages,
// the other side's typing indicator and read receipts. Shared by youth and staff pages.

const TYPING_SHOWN_MS = 6000;

export class ChatView {
  constructor({ list, typing, me, strings }) {
    Object.assign(this, { list, typing, me, strings });
    this.messages = new Map(); // seq -> frame
    this.pending = new Map(); // client_id -> text
    this.latestSeq = 0;
    this.otherReadSeq = 0;
  }

  reset() {
    this.messages.clear();
    this.pending.clear();
    this.latestSeq = 0;
    this.otherReadSeq = 0;
    this.render();
  }

  add(frame) {
    if (this.messages.has(frame.seq)) return false;
    this.messages.set(frame.seq, frame);
    this.pending.delete(frame.client_id);
    this.latestSeq = Math.max(this.latestSeq, frame.seq);
    this.render();
    return true;
  }

  addPending(clientId, text) {
    this.pending.set(clientId, text);
    this.render();
  }

  dropPending(clientId) {
    this.pending.delete(clientId);
    this.render();
  }

  setOtherRead(seq) {
    this.otherReadSeq = Math.max(this.otherReadSeq, seq);
    this.render();
  }

  // Highest seq of a message from the other side: what we have read when we look.
  latestFromOther() {
    let seq = 0;
    for (const frame of this.messages.values()) if (frame.sender !== this.me) seq = Math.max(seq, frame.seq);
    return seq;
  }

  showTyping(name, active) {
    clearTimeout(this.typingTimer);
    this.typing.textContent = active ? this.strings.typing.replace("{name}", name) : "";
    if (active) this.typingTimer = setTimeout(() => (this.typing.textContent = ""), TYPING_SHOWN_MS);
  }

  render() {
    const frames = [...this.messages.values()].sort((a, b) => a.seq - b.seq);
    let lastMine = 0;
    for (const f of frames) if (f.sender === this.me) lastMine = f.seq;
    const items = frames.map((f) => {
      const li = document.createElement("li");
      li.className = `msg ${f.sender === this.me ? "mine" : "theirs"}`;
      li.dataset.seq = f.seq;
      const who = document.createElement("span");
      who.className = "who";
      who.textContent = f.sender === this.me ? this.strings.you : f.sender_name;
      const text = document.createElement("p");
      text.className = "text";
      text.textContent = f.text ?? "…";
      li.append(who, text);
      if (f.seq === lastMine && this.otherReadSeq >= f.seq) {
        const read = document.createElement("span");
        read.className = "read-receipt";
        read.textContent = this.strings.read;
        li.append(read);
      }
      return li;
    });
    for (const [clientId, text] of this.pending) {
      const li = document.createElement("li");
      li.className = "msg mine pending";
      li.dataset.clientId = clientId;
      const p = document.createElement("p");
      p.className = "text";
      p.textContent = text;
      li.append(p);
      items.push(li);
    }
    this.list.replaceChildren(...items);
    this.list.scrollTop = this.list.scrollHeight;
  }
}

// Sends typing {active} at most every few seconds while typing, and false when idle.
export function typingNotifier(send) {
  let active = false;
  let lastSent = 0;
  let idleTimer;
  return {
    input() {
      const now = Date.now();
      if (!active || now - lastSent > 3000) {
        active = true;
        lastSent = now;
        send(true);
      }
      clearTimeout(idleTimer);
      idleTimer = setTimeout(() => this.stop(), 4000);
    },
    stop() {
      clearTimeout(idleTimer);
      if (active) {
        active = false;
        send(false);
      }
    },
  };
}
