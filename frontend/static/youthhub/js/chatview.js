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
    // A live region too: the same text set again (every few seconds) would be read again.
    const text = active ? this.strings.typing.replace("{name}", name) : "";
    if (this.typing.textContent !== text) this.typing.textContent = text;
    if (active) this.typingTimer = setTimeout(() => (this.typing.textContent = ""), TYPING_SHOWN_MS);
  }

  // The list is an aria-live region: only what is new is added to it, and an item that
  // changes is updated in place, so a screen reader announces each message once (replacing
  // every child on each render would read the whole conversation out again).
  render() {
    const frames = [...this.messages.values()].sort((a, b) => a.seq - b.seq);
    let lastMine = 0;
    for (const f of frames) if (f.sender === this.me) lastMine = f.seq;
    const existing = new Map();
    const pendingItems = new Map();
    for (const li of this.list.children) {
      if ("seq" in li.dataset) existing.set(Number(li.dataset.seq), li);
      else if ("clientId" in li.dataset) pendingItems.set(li.dataset.clientId, li);
    }
    const wanted = [];
    for (const f of frames) {
      let li = existing.get(f.seq);
      if (!li && f.client_id && pendingItems.has(f.client_id) && !this.pending.has(f.client_id)) {
        li = pendingItems.get(f.client_id); // our own message arrived: the same item, confirmed
        pendingItems.delete(f.client_id);
        delete li.dataset.clientId;
        li.dataset.seq = f.seq;
      }
      if (!li) li = this.item(f.seq);
      this.fill(li, f.sender === this.me, f.sender === this.me ? this.strings.you : f.sender_name, f.text ?? "…");
      this.receipt(li, f.seq === lastMine && this.otherReadSeq >= f.seq);
      wanted.push(li);
    }
    for (const [clientId, text] of this.pending) {
      const li = pendingItems.get(clientId) || this.item(null, clientId);
      this.fill(li, true, this.strings.you, text, true);
      wanted.push(li);
    }
    placeChildren(this.list, wanted);
    this.list.scrollTop = this.list.scrollHeight;
  }

  item(seq, clientId) {
    const li = document.createElement("li");
    if (seq !== null) li.dataset.seq = seq;
    else li.dataset.clientId = clientId;
    const who = document.createElement("span");
    who.className = "who";
    const text = document.createElement("p");
    text.className = "text";
    li.append(who, text);
    return li;
  }

  // Sets what differs only: an unchanged text node is not announced again.
  fill(li, mine, name, text, pending = false) {
    const className = `msg ${mine ? "mine" : "theirs"}${pending ? " pending" : ""}`;
    if (li.className !== className) li.className = className;
    const who = li.querySelector(".who");
    if (who.textContent !== name) who.textContent = name;
    const p = li.querySelector(".text");
    if (p.textContent !== text) p.textContent = text;
  }

  // "Read" under the last own message the other side has read (one at a time).
  receipt(li, shown) {
    const read = li.querySelector(".read-receipt");
    if (shown && !read) {
      const span = document.createElement("span");
      span.className = "read-receipt";
      span.textContent = this.strings.read;
      li.append(span);
    } else if (!shown && read) {
      read.remove();
    }
  }
}

// Makes `wanted` the children of `list`, in that order, touching only what differs: nodes
// not wanted are removed, new ones inserted, and nodes already in place are left alone (an
// aria-live list then announces only what is new).
export function placeChildren(list, wanted) {
  const keep = new Set(wanted);
  for (const node of [...list.children]) if (!keep.has(node)) node.remove();
  let previous = null;
  for (const node of wanted) {
    const inPlace = previous ? previous.nextElementSibling === node : list.firstElementChild === node;
    if (!inPlace) {
      if (previous) previous.after(node);
      else list.prepend(node);
    }
    previous = node;
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
