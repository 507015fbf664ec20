// The staff dashboard's tools around a conversation: canned replies, internal notes, transfer
// to a colleague or a role (with a note; the sender stays until someone accepts), end with
// tags and a triage colour, earlier conversations with the same youth, my shift, capacity,
// and opt-in sound + desktop notifications. staff.js owns the tabs and the chat itself.
import { el } from "./dom.js";
import { placeChildren } from "./chatview.js";
import { newClientId } from "./connection.js";
import { HandoverTool } from "./staffhandover.js";

const $ = (id) => document.getElementById(id);

function beep(frequency) {
  try {
    const audio = new AudioContext();
    const tone = audio.createOscillator();
    tone.frequency.value = frequency;
    tone.connect(audio.destination);
    tone.start();
    tone.stop(audio.currentTime + 0.25);
  } catch {
    /* no sound allowed: the page still shows it */
  }
}

// The tool buttons under a conversation and the panel each opens.
const TOOLS = {
  ".show-notes": ".notes-panel",
  ".show-transfer": ".transfer-panel",
  ".end": ".end-panel",
  ".show-earlier": ".earlier-panel",
  ".show-handover": ".handover-panel",
  ".show-block": ".block-panel",
};

export class StaffWork {
  // strings: the `work` part of the page's translated strings; fill(template, values).
  constructor({ connection, strings, fill, lang, conversations, me }) {
    this.handover = new HandoverTool({ connection, strings: strings.handover, fill, lang });
    Object.assign(this, { connection, s: strings, fill, lang, conversations, me });
    this.canned = [];
    this.tags = {};
    this.transfers = new Map(); // id -> card (pending, concerning me)
    this.blocks = new Map(); // id -> block card (in force, that I may lift)
    this.shift = [];
    this.seenQueue = null; // ids already in the queue (null until the first snapshot)
    this.previewing = null;
    this.wireGlobal();
  }

  time(iso) {
    return new Date(iso).toLocaleTimeString(this.lang, { hour: "2-digit", minute: "2-digit" });
  }

  // -- the whole dashboard ---------------------------------------------------------------------

  wireGlobal() {
    $("my-capacity").addEventListener("change", () => {
      const capacity = Number($("my-capacity").value);
      this.connection.send({ type: "capacity", capacity });
    });
    const notify = $("notify");
    notify.checked = localStorage.getItem("yh.staff.notify") === "1";
    notify.addEventListener("change", async () => {
      if (notify.checked && "Notification" in window && Notification.permission === "default") {
        await Notification.requestPermission();
      }
      localStorage.setItem("yh.staff.notify", notify.checked ? "1" : "0");
    });
    $("refresh-shift").addEventListener("click", () => this.connection.send({ type: "shift" }));
    setInterval(() => this.connection.send({ type: "shift" }), 30000);
    const dialog = $("preview-dialog");
    dialog.querySelector(".preview-close").addEventListener("click", () => dialog.close());
    dialog.querySelector(".preview-accept").addEventListener("click", () => {
      if (this.previewing) this.connection.send({ type: "transfer_accept", transfer_id: this.previewing });
      dialog.close();
    });
    dialog.querySelector(".preview-decline").addEventListener("click", () => {
      if (this.previewing) this.connection.send({ type: "transfer_decline", transfer_id: this.previewing });
      dialog.close();
    });
  }

  // Sound and (if allowed, and the page is not in view) a desktop notification with a
  // neutral text: nothing about the youth goes to the operating system.
  notify(text, urgent = false) {
    if (!$("notify").checked) return;
    beep(urgent ? 880 : 520);
    if ("Notification" in window && Notification.permission === "granted" && document.visibilityState !== "visible") {
      try {
        new Notification("youthhub", { body: text, tag: urgent ? "yh-urgent" : "yh-queue" });
      } catch {
        /* some browsers only allow notifications from a service worker */
      }
    }
  }

  welcome(frame) {
    this.handover.welcome(frame);
    this.canned = frame.canned || [];
    this.tags = frame.tags || {};
    $("my-capacity").value = frame.capacity;
    this.transfers = new Map((frame.transfers || []).map((t) => [t.id, t]));
    this.renderTransfers();
    this.blocks = new Map((frame.blocks || []).map((b) => [b.id, b]));
    this.renderBlocks();
    this.seenQueue = new Set((frame.queue || []).map((e) => e.conversation_id));
    for (const c of this.conversations.values()) this.fillCanned(c);
    this.connection.send({ type: "shift" });
  }

  queueChanged(queue) {
    const ids = new Set(queue.map((e) => e.conversation_id));
    if (this.seenQueue) {
      // A crisis has its own alert (`crisis.alert`, below): one notification, not two.
      const fresh = queue.filter((e) => !this.seenQueue.has(e.conversation_id) && e.claimable && !e.crisis);
      if (fresh.length) this.notify(this.s.notify_new);
    }
    this.seenQueue = ids;
  }

  // Returns true when the frame was one of ours.
  onFrame(frame) {
    const c = this.conversations.get(frame.conversation_id);
    if (this.handover.onFrame(frame)) return true;
    switch (frame.type) {
      case "joined":
        if (c) {
          c.transferNotice = this.fill(this.s.partner_joined, { name: frame.name });
          this.renderPane(c);
        }
        return true;
      case "staff_context":
        if (c) {
          c.notes = new Map(frame.notes.map((n) => [n.id, n]));
          c.earlier = frame.earlier;
          this.renderNotes(c);
          this.renderEarlierList(c);
        }
        return true;
      case "note":
        if (c) {
          c.notes = c.notes || new Map();
          c.notes.set(frame.id, frame);
          this.renderNotes(c);
        }
        return true;
      case "transfer.offer":
      case "transfer.closed":
        this.transferChanged(frame.transfer);
        return true;
      case "transfer.preview":
        this.showPreview(frame);
        return true;
      case "transferred":
        if (c) {
          c.transferredTo = frame.to;
          c.pendingTransfer = null;
        }
        return false; // staff.js re-renders the pane
      case "passed":
        // Passed to the warm handover's partner: this person has let go of it.
        if (c) {
          c.passedTo = frame.partner || {};
          c.transferredTo = { display_name: c.passedTo.name || c.passedTo.service || "" };
          c.pendingTransfer = null;
        }
        return false; // staff.js re-renders the pane
      case "earlier":
        if (c) this.showEarlier(c, frame);
        return true;
      case "capacity":
        $("my-capacity").value = frame.capacity;
        this.connection.send({ type: "shift" });
        return true;
      case "shift":
        this.shift = frame.staff;
        this.renderShift();
        return true;
      case "crisis.alert":
        this.notify(this.s.notify_crisis, true);
        return false;
      case "block.update":
        this.blockChanged(frame.block);
        return true;
      default:
        return false;
    }
  }

  // -- transfers -------------------------------------------------------------------------------

  transferChanged(card) {
    const mine = card.from.id === this.me.id;
    if (mine) {
      const c = this.conversations.get(card.conversation_id);
      if (c) {
        c.pendingTransfer = card.state === "pending" ? card : null;
        if (card.state === "declined") c.transferNotice = this.fill(this.s.transfer_declined, { name: card.to_staff?.display_name || "" });
        else if (card.state === "cancelled") c.transferNotice = "";
        this.renderPane(c);
      }
      return;
    }
    const wasNew = !this.transfers.has(card.id);
    if (card.state === "pending") this.transfers.set(card.id, card);
    else this.transfers.delete(card.id);
    if (card.state === "pending" && wasNew) this.notify(this.s.notify_transfer, card.crisis);
    this.renderTransfers();
  }

  transferTarget(card) {
    if (card.to_staff) return card.to_staff.id === this.me.id ? this.s.to_you : card.to_staff.display_name;
    return this.s.roles[card.to_role] || card.to_role;
  }

  renderTransfers() {
    const incoming = [...this.transfers.values()].filter((t) => t.from.id !== this.me.id);
    $("transfers-panel").hidden = incoming.length === 0;
    // An aria-live list: rows that did not change stay, so only a new offer is announced.
    const rows = (this.transferRows = this.transferRows || new Map());
    const wanted = incoming.map((t) => {
      const name = t.ticket ? `${t.ticket} (${t.alias})` : t.alias;
      const text = this.fill(this.s.transfer_offer, { name, from: t.from.display_name, to: this.transferTarget(t) });
      const key = `${text}|${t.crisis}`;
      let row = rows.get(t.id);
      if (!row || row.key !== key) {
        const read = el("button", { type: "button", className: "primary preview", textContent: this.s.read_and_decide });
        read.addEventListener("click", () => this.connection.send({ type: "transfer_preview", transfer_id: t.id }));
        row = { key, li: el("li", { dataset: { transferId: t.id }, className: t.crisis ? "crisis" : "" }, el("span", { textContent: text }), read) };
        rows.set(t.id, row);
      }
      return row.li;
    });
    const ids = new Set(incoming.map((t) => t.id));
    for (const id of rows.keys()) if (!ids.has(id)) rows.delete(id);
    placeChildren($("transfers"), wanted);
  }

  showPreview(frame) {
    const t = frame.transfer;
    this.previewing = t.id;
    const dialog = $("preview-dialog");
    const name = t.ticket ? `${t.ticket} (${t.alias})` : t.alias;
    dialog.querySelector(".preview-title").textContent = this.fill(this.s.preview_title, { name, from: t.from.display_name });
    const notes = frame.notes.filter((n) => n.text !== null);
    dialog.querySelector(".preview-notes").replaceChildren(
      ...notes.map((n) => el("li", { className: n.kind === "transfer" ? "note transfer-note" : "note" },
        el("span", { className: "who", textContent: `${n.author} · ${this.time(n.created_at)}` }),
        el("p", { className: "text", textContent: n.text }))),
    );
    dialog.querySelector(".preview-messages").replaceChildren(
      ...frame.messages.map((m) => el("li", { className: `msg ${m.sender === "youth" ? "theirs" : "mine"}` },
        el("span", { className: "who", textContent: m.sender_name }),
        el("p", { className: "text", textContent: m.text ?? "…" }))),
    );
    dialog.querySelector(".preview-decline").hidden = !(t.to_staff && t.to_staff.id === this.me.id);
    if (!dialog.open) dialog.showModal();
  }

  // -- blocks ----------------------------------------------------------------------------------

  when(iso) {
    return new Date(iso).toLocaleString(this.lang, { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
  }

  blockChanged(card) {
    if (card.active) this.blocks.set(card.id, card);
    else this.blocks.delete(card.id);
    const c = card.conversation_id && this.conversations.get(card.conversation_id);
    if (c) {
      if (!card.active) c.transferNotice = this.fill(this.s.block_lifted, { alias: card.alias });
      this.renderPane(c);
    }
    this.renderBlocks();
  }

  blockOf(conversationId) {
    const now = Date.now();
    for (const b of this.blocks.values()) if (b.conversation_id === conversationId && new Date(b.until) > now) return b;
    return null;
  }

  lift(card) {
    this.connection.send({ type: "unblock", block_id: card.id });
  }

  // Blocks in force this person may lift (their own; a supervisor's: all).
  renderBlocks() {
    const now = Date.now();
    const blocks = [...this.blocks.values()].filter((b) => new Date(b.until) > now);
    $("blocks-panel").hidden = blocks.length === 0;
    $("blocks").replaceChildren(
      ...blocks.map((b) => {
        const parts = [this.fill(this.s.block_item, { alias: b.alias, when: this.when(b.until) })];
        if (b.reason) parts.push(this.s.block_reasons[b.reason] || b.reason);
        if (b.by && b.by.id !== this.me.id) parts.push(this.fill(this.s.block_by, { name: b.by.display_name }));
        const lift = el("button", { type: "button", className: "lift", textContent: this.s.lift });
        lift.addEventListener("click", () => this.lift(b));
        return el("li", { dataset: { blockId: b.id } }, el("span", { textContent: parts.join(" · ") }), lift);
      }),
    );
  }

  resetBlockPanel(c) {
    const q = (selector) => c.pane.querySelector(selector);
    q(".block-confirm").hidden = true;
    q(".block-yes").hidden = true;
    q(".block-go").hidden = false;
  }

  // -- one conversation's pane -----------------------------------------------------------------

  decorate(c) {
    const pane = c.pane;
    const id = c.summary.id;
    const q = (selector) => pane.querySelector(selector);
    c.notes = c.notes || new Map();
    c.earlier = c.earlier || [];
    // Each tool button opens its panel (and closes the others); aria-expanded says which.
    for (const [button, panel] of Object.entries(TOOLS)) {
      q(panel).id = `${panel.slice(1)}-${id}`;
      q(button).setAttribute("aria-controls", q(panel).id);
    }
    const toggle = (which) => {
      for (const selector of Object.values(TOOLS)) {
        const panel = q(selector);
        panel.hidden = selector === which ? !panel.hidden : true;
      }
      this.syncExpanded(c);
      const open = q(which);
      if (!open.hidden) open.querySelector("textarea, select, input, button")?.focus();
    };
    q(".show-notes").addEventListener("click", () => toggle(".notes-panel"));
    q(".show-transfer").addEventListener("click", () => {
      this.fillTransferTargets(c);
      toggle(".transfer-panel");
    });
    q(".show-earlier").addEventListener("click", () => toggle(".earlier-panel"));
    q(".show-handover").addEventListener("click", () => toggle(".handover-panel"));
    q(".show-block").addEventListener("click", () => {
      this.resetBlockPanel(c);
      toggle(".block-panel");
    });
    this.handover.decorate(c);
    q(".end").addEventListener("click", () => toggle(".end-panel"));
    for (const [button, panel] of Object.entries(TOOLS)) {
      q(`${panel} .cancel`)?.addEventListener("click", () => {
        q(panel).hidden = true;
        this.syncExpanded(c);
        q(button).focus(); // back to the button that opened it
      });
    }

    // Internal notes: never sent to the youth.
    q(".note-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const textarea = q(".note-form textarea");
      if (!textarea.value.trim()) return;
      this.connection.send({ type: "note", conversation_id: id, client_id: newClientId(), text: textarea.value });
      textarea.value = "";
    });

    // Transfer with a note.
    q(".transfer-panel").addEventListener("submit", (event) => {
      event.preventDefault();
      const choice = q(".transfer-target").value;
      const note = q(".transfer-note").value;
      if (!choice || !note.trim()) {
        q(".transfer-error").textContent = this.s.transfer_needs;
        return;
      }
      const [kind, value] = choice.split(":");
      const target = kind === "staff" ? { staff: Number(value) } : { role: value };
      this.connection.send({ type: "transfer", conversation_id: id, target, note });
      q(".transfer-note").value = "";
      q(".transfer-error").textContent = "";
      q(".transfer-panel").hidden = true;
      this.syncExpanded(c);
    });
    q(".withdraw").addEventListener("click", () => {
      if (c.pendingTransfer) this.connection.send({ type: "transfer_cancel", transfer_id: c.pendingTransfer.id });
    });

    // End with tags, a triage colour and (optionally) a feedback prompt.
    const tags = q(".end-tags");
    tags.append(
      ...Object.entries(this.tags).map(([key, label]) =>
        el("label", {}, el("input", { type: "checkbox", value: key }), ` ${label}`)),
    );
    q(".end-panel").addEventListener("submit", (event) => {
      event.preventDefault();
      const chosen = [...tags.querySelectorAll("input:checked")].map((i) => i.value);
      const triage = q(".end-panel input[name^=triage]:checked")?.value;
      const frame = { type: "end", conversation_id: id, tags: chosen, feedback: q(".ask-feedback").checked };
      if (triage) frame.triage = triage;
      this.connection.send(frame);
      q(".end-panel").hidden = true;
      this.syncExpanded(c);
    });
    // Radio groups need a name unique to this pane.
    for (const radio of pane.querySelectorAll(".end-panel input[type=radio]")) radio.name = `triage-${id}`;
    for (const radio of pane.querySelectorAll(".block-panel input[type=radio]")) radio.name = `duration-${id}`;

    // Block the youth for a while: choose, then confirm in a second step.
    const duration = () => q(".block-panel input[type=radio]:checked")?.value;
    q(".block-panel").addEventListener("submit", (event) => {
      event.preventDefault();
      const chosen = duration();
      if (!chosen) return;
      q(".block-confirm").textContent = this.fill(this.s.block_confirm, {
        alias: c.summary.alias, duration: this.s.block_durations[chosen] || chosen });
      q(".block-confirm").hidden = false;
      q(".block-go").hidden = true;
      q(".block-yes").hidden = false;
      q(".block-yes").focus();
    });
    q(".block-yes").addEventListener("click", () => {
      const frame = { type: "block", conversation_id: id, duration: duration() };
      const reason = q(".block-reason").value;
      if (reason) frame.reason = reason;
      this.connection.send(frame);
      this.resetBlockPanel(c);
      q(".block-panel").hidden = true;
      this.syncExpanded(c);
      c.focusBlock = true; // the keyboard goes to "Lift the block" once the block is in place
    });
    q(".block-panel .cancel").addEventListener("click", () => this.resetBlockPanel(c));
    q(".block-status .lift").addEventListener("click", () => {
      const block = this.blockOf(id);
      if (block) this.lift(block);
    });

    // Canned replies: inserted into the message box, editable before sending.
    q(".canned").addEventListener("change", () => {
      const select = q(".canned");
      const reply = this.canned.find((r) => String(r.id) === select.value);
      select.value = "";
      if (!reply) return;
      const textarea = q(".composer textarea");
      const text = reply.text.replaceAll("{name}", this.me.display_name);
      const at = textarea.selectionStart ?? textarea.value.length;
      textarea.value = textarea.value.slice(0, at) + text + textarea.value.slice(textarea.selectionEnd ?? at);
      textarea.focus();
      textarea.dispatchEvent(new Event("input"));
    });
    this.fillCanned(c);
  }

  fillCanned(c) {
    const select = c.pane.querySelector(".canned");
    const byLanguage = new Map();
    for (const reply of this.canned) {
      if (!byLanguage.has(reply.language)) byLanguage.set(reply.language, []);
      byLanguage.get(reply.language).push(reply);
    }
    select.replaceChildren(
      el("option", { value: "", textContent: this.s.canned_pick }),
      ...[...byLanguage].map(([language, replies]) =>
        el("optgroup", { label: this.s.languages[language] || language },
          ...replies.map((r) => el("option", { value: String(r.id), textContent: r.title })))),
    );
    select.hidden = this.canned.length === 0;
  }

  fillTransferTargets(c) {
    const select = c.pane.querySelector(".transfer-target");
    const colleagues = this.shift.filter((p) => !p.me && p.status !== "away");
    select.replaceChildren(
      el("option", { value: "", textContent: this.s.transfer_pick }),
      el("optgroup", { label: this.s.colleagues },
        ...colleagues.map((p) => el("option", {
          value: `staff:${p.id}`,
          textContent: this.fill(this.s.colleague_option, { name: p.display_name, chats: p.chats, capacity: p.capacity }),
        }))),
      el("optgroup", { label: this.s.a_role },
        ...Object.entries(this.s.roles).map(([role, label]) => el("option", { value: `role:${role}`, textContent: label }))),
    );
  }

  renderNotes(c) {
    const notes = [...c.notes.values()].sort((a, b) => a.created_at.localeCompare(b.created_at));
    c.pane.querySelector(".notes").replaceChildren(
      ...notes.map((n) => el("li", { className: n.kind === "transfer" ? "note transfer-note" : "note" },
        el("span", { className: "who", textContent: `${n.author} · ${this.time(n.created_at)}${n.kind === "transfer" ? ` · ${this.s.transfer_note}` : ""}` }),
        el("p", { className: "text", textContent: n.text ?? "…" }))),
    );
    c.pane.querySelector(".show-notes").textContent = this.fill(this.s.notes_button, { n: notes.length });
  }

  renderEarlierList(c) {
    const button = c.pane.querySelector(".show-earlier");
    button.hidden = c.earlier.length === 0;
    button.textContent = this.fill(this.s.earlier_button, { n: c.earlier.length });
    c.pane.querySelector(".earlier-list").replaceChildren(
      ...c.earlier.map((e) => {
        const open = el("button", { type: "button", textContent: this.fill(this.s.earlier_item, {
          date: new Date(e.created_at).toLocaleDateString(this.lang), n: e.messages }) });
        open.addEventListener("click", () =>
          this.connection.send({ type: "earlier", conversation_id: c.summary.id, earlier_id: e.id }));
        return el("li", {}, open);
      }),
    );
  }

  showEarlier(c, frame) {
    const view = c.pane.querySelector(".earlier-view");
    const titleId = `earlier-title-${c.summary.id}`;
    view.replaceChildren(
      el("h4", { id: titleId, textContent: this.fill(this.s.earlier_title, { date: new Date(frame.earlier.created_at).toLocaleDateString(this.lang) }) }),
      // A scrolling list: focusable, so it can be scrolled with the keyboard.
      el("ol", { className: "messages earlier-messages", tabIndex: 0, "aria-labelledby": titleId },
        ...frame.messages.map((m) => el("li", { className: `msg ${m.sender === "youth" ? "theirs" : "mine"}` },
          el("span", { className: "who", textContent: m.sender_name }),
          el("p", { className: "text", textContent: m.text ?? "…" })))),
    );
  }

  // Called by staff.js after it renders the pane.
  renderPane(c) {
    const q = (selector) => c.pane.querySelector(selector);
    const active = c.summary.state === "active" && !c.transferredTo;
    q(".tools").hidden = !active;
    const pending = q(".transfer-pending");
    pending.hidden = !c.pendingTransfer;
    if (c.pendingTransfer) {
      q(".transfer-pending-text").textContent = this.fill(this.s.transfer_waiting, { to: this.transferTarget(c.pendingTransfer) });
    }
    q(".transfer-notice").textContent = c.transferNotice || "";
    if (!active) {
      for (const panel of c.pane.querySelectorAll(".notes-panel, .transfer-panel, .end-panel, .handover-panel")) panel.hidden = true;
    }
    // Block: from an active chat, or one that ended (the server allows a day after the end).
    const block = this.blockOf(c.summary.id);
    const blockable = !block && !c.transferredTo && ["active", "ended"].includes(c.summary.state);
    q(".show-block").hidden = !blockable;
    if (!blockable) q(".block-panel").hidden = true;
    q(".block-status").hidden = !block;
    if (block) {
      q(".block-status-text").textContent = this.fill(this.s.blocked_until, { alias: c.summary.alias, when: this.when(block.until) });
      if (c.focusBlock) q(".block-status .lift").focus();
      c.focusBlock = false;
    }
    this.syncExpanded(c);
  }

  syncExpanded(c) {
    for (const [button, panel] of Object.entries(TOOLS)) {
      c.pane.querySelector(button).setAttribute("aria-expanded", String(!c.pane.querySelector(panel).hidden));
    }
  }

  renderShift() {
    $("shift").replaceChildren(
      ...this.shift.map((p) => el("tr", { className: p.me ? "me" : "" },
        el("td", { textContent: p.display_name }),
        el("td", { textContent: this.s.roles[p.role] || p.role }),
        el("td", { textContent: this.s.statuses[p.status] || p.status }),
        el("td", { textContent: `${p.chats} / ${p.capacity}` }))),
    );
  }
}
