// The staff page: live queue, several conversations in tabs, chat with read receipts.
import { ChatView, typingNotifier } from "./chatview.js";
import { Connection, newClientId } from "./connection.js";

const $ = (id) => document.getElementById(id);
const strings = { typing: "{name} is typing …", read: "Read", you: "You" };
const conversations = new Map(); // id -> {summary, view, pane, tab, unread}
let activeId = null;

const connection = new Connection({
  path: "/ws/staff/",
  hello: () => {
    const lastSeq = {};
    for (const [id, c] of conversations) lastSeq[id] = c.view.latestSeq;
    return { type: "hello", last_seq: lastSeq };
  },
  onFrame,
  onStatus: (status) => {
    $("status").textContent = { connecting: "Connecting …", online: "Online", offline: "Offline – reconnecting …",
      unauthorized: "Logged out" }[status];
    $("status").dataset.state = status;
    if (status === "unauthorized") location.assign("/staff/login/");
  },
  outboxKey: "yh.staff.outbox",
});

function renderQueue(queue) {
  $("queue-count").textContent = queue.length;
  $("queue-empty").hidden = queue.length > 0;
  $("queue").replaceChildren(
    ...queue.map((entry) => {
      const li = document.createElement("li");
      const since = new Date(entry.waiting_since);
      const label = document.createElement("span");
      label.textContent = `${entry.alias} · waiting since ${since.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}`;
      const button = document.createElement("button");
      button.type = "button";
      button.className = "primary accept";
      button.textContent = `Take ${entry.alias}`;
      button.addEventListener("click", () => connection.send({ type: "accept", conversation_id: entry.conversation_id }));
      li.append(label, button);
      return li;
    }),
  );
}

function ensureConversation(summary) {
  let c = conversations.get(summary.id);
  if (!c) {
    const pane = $("pane-template").content.firstElementChild.cloneNode(true);
    pane.id = `pane-${summary.id}`;
    const tab = document.createElement("button");
    tab.type = "button";
    tab.setAttribute("role", "tab");
    tab.className = "tab";
    tab.addEventListener("click", () => activate(summary.id));
    const view = new ChatView({ list: pane.querySelector(".messages"), typing: pane.querySelector(".typing"),
      me: "staff", strings });
    c = { summary, view, pane, tab, unread: 0 };
    conversations.set(summary.id, c);
    wirePane(c);
    $("tabs").append(tab);
    $("panes").append(pane);
    if (!activeId) activate(summary.id);
  }
  c.summary = { ...c.summary, ...summary };
  c.view.setOtherRead(c.summary.youth_read_seq || 0);
  renderConversation(c);
  $("no-conversations").hidden = conversations.size > 0;
  return c;
}

function wirePane(c) {
  const id = c.summary.id;
  const form = c.pane.querySelector(".composer");
  const textarea = form.querySelector("textarea");
  const textId = `text-${id}`;
  textarea.id = textId;
  form.querySelector("label").htmlFor = textId;
  const typing = typingNotifier((active) => connection.send({ type: "typing", conversation_id: id, active }));
  textarea.addEventListener("input", () => typing.input());
  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = textarea.value;
    if (!text.trim()) return;
    const message = connection.sendMessage({ conversation_id: id, client_id: newClientId(), text });
    c.view.addPending(message.client_id, text);
    textarea.value = "";
    typing.stop();
  });
  c.pane.querySelector(".end").addEventListener("click", () => connection.send({ type: "end", conversation_id: id }));
}

function renderConversation(c) {
  const s = c.summary;
  c.tab.textContent = c.unread ? `${s.alias} (${c.unread})` : s.alias;
  c.tab.setAttribute("aria-selected", String(activeId === s.id));
  c.pane.hidden = activeId !== s.id;
  c.pane.querySelector(".chat-state").textContent =
    s.state === "active" ? `Chatting with ${s.alias}` : `Conversation with ${s.alias} has ended.`;
  c.pane.querySelector(".composer").hidden = s.state !== "active";
  c.pane.querySelector(".end").hidden = s.state !== "active";
}

function activate(id) {
  activeId = id;
  for (const c of conversations.values()) {
    if (c.summary.id === id) c.unread = 0;
    renderConversation(c);
  }
  markRead(conversations.get(id));
}

function markRead(c) {
  if (!c || activeId !== c.summary.id || document.visibilityState !== "visible") return;
  const seq = c.view.latestFromOther();
  if (seq > (c.readSent || 0)) {
    c.readSent = seq;
    connection.send({ type: "read", conversation_id: c.summary.id, seq });
  }
}

function onFrame(frame) {
  const c = conversations.get(frame.conversation_id);
  switch (frame.type) {
    case "welcome":
      renderQueue(frame.queue);
      for (const c of conversations.values()) c.readSent = 0;
      for (const summary of frame.conversations) ensureConversation(summary);
      break;
    case "queue.update":
      renderQueue(frame.queue);
      break;
    case "assigned":
      ensureConversation(frame.conversation);
      activate(frame.conversation.id);
      break;
    case "message":
      if (!c) break;
      if (c.view.add(frame) && frame.sender === "youth" && activeId !== frame.conversation_id) c.unread += 1;
      renderConversation(c);
      markRead(c);
      break;
    case "history":
      if (!c) break;
      for (const message of frame.messages) c.view.add(message);
      if (!frame.complete) connection.send({ type: "sync", conversation_id: frame.conversation_id, after_seq: c.view.latestSeq });
      break;
    case "resync_required":
      if (!c) break;
      c.view.reset();
      connection.send({ type: "sync", conversation_id: frame.conversation_id, after_seq: 0 });
      break;
    case "typing":
      if (c) c.view.showTyping(c.summary.alias, frame.active);
      break;
    case "read":
      if (c && frame.reader === "youth") c.view.setOtherRead(frame.seq);
      break;
    case "ended":
      if (c) {
        c.summary.state = frame.state;
        renderConversation(c);
      }
      break;
    case "error":
      if (frame.client_id) {
        connection.discard(frame.client_id);
        for (const other of conversations.values()) other.view.dropPending(frame.client_id);
      }
      $("staff-error").textContent = frame.message;
      setTimeout(() => ($("staff-error").textContent = ""), 8000);
      break;
  }
}

document.addEventListener("visibilitychange", () => markRead(conversations.get(activeId)));
connection.start();
