// The staff page: live queue, several conversations in tabs, chat with read receipts.
import { ChatView, placeChildren, typingNotifier } from "./chatview.js";
import { Connection, newClientId } from "./connection.js";
import { StaffWork } from "./staffwork.js";

const $ = (id) => document.getElementById(id);
// Every text comes translated from the server (frontend/views.py `staff`).
const strings = JSON.parse($("strings").textContent);
const LANG = document.documentElement.lang || undefined;
const fill = (template, values) => template.replace(/\{(\w+)\}/g, (all, key) => (key in values ? values[key] : all));
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
    $("status").textContent = strings.status[status];
    $("status").dataset.state = status;
    if (status === "unauthorized") location.assign("/staff/login/");
  },
  outboxKey: "yh.staff.outbox",
});
const work = new StaffWork({ connection, strings: strings.work, fill, lang: LANG, conversations, me: {} });

function targetLabel(entry) {
  if (entry.target === "any") return strings.first_available;
  if (entry.target.staff) return entry.for_me ? strings.asked_for_you : fill(strings.asked_for_name, { name: entry.target_name });
  return strings.asked_for_role[entry.target.role] || fill(strings.asked_for_other_role, { role: entry.target.role });
}

function tag(text, className = "tag") {
  const span = document.createElement("span");
  span.className = className;
  span.textContent = text;
  return span;
}

function room() {
  return $("my-room").value.trim() || undefined;
}

// The server sends this person's view: what they serve, crisis first, then who asked for
// them, then by waiting time; `claimable` says whether they may take it. The list is an
// aria-live region: a row is rebuilt only when its entry changed, so a screen reader hears
// what is new rather than the whole queue on every update.
const queueRows = new Map(); // conversation id -> {key, li}

function renderQueue(queue) {
  $("queue-count").textContent = queue.length;
  $("queue-empty").hidden = queue.length > 0;
  $("take-next").disabled = !queue.some((e) => e.claimable);
  const rows = queue.map((entry) => {
    const key = JSON.stringify(entry);
    let row = queueRows.get(entry.conversation_id);
    if (!row || row.key !== key) {
      row = { key, li: queueRow(entry) };
      queueRows.set(entry.conversation_id, row);
    }
    return row.li;
  });
  const ids = new Set(queue.map((e) => e.conversation_id));
  for (const id of queueRows.keys()) if (!ids.has(id)) queueRows.delete(id);
  placeChildren($("queue"), rows);
}

function queueRow(entry) {
  const li = document.createElement("li");
  li.dataset.conversationId = entry.conversation_id;
  if (entry.crisis) li.classList.add("crisis");
  if (entry.for_me) li.classList.add("for-me");
  const since = new Date(entry.waiting_since);
  const label = document.createElement("span");
  const name = entry.ticket ? `${entry.ticket} (${entry.alias})` : entry.alias;
  const time = since.toLocaleTimeString(LANG, { hour: "2-digit", minute: "2-digit" });
  label.textContent = fill(strings.waiting_since, { name, time });
  const tags = document.createElement("span");
  tags.className = "tags";
  if (entry.crisis) tags.append(tag(strings.not_safe, "tag crisis"));
  tags.append(tag(strings.channel[entry.channel] || entry.channel), tag(targetLabel(entry)));
  if (entry.topic) tags.append(tag(strings.topics[entry.topic] || entry.topic));
  if (entry.after_hours) tags.append(tag(strings.after_hours));
  const button = document.createElement("button");
  button.type = "button";
  button.className = "primary accept";
  button.disabled = !entry.claimable;
  button.textContent =
    entry.channel === "dropin" ? fill(strings.call, { ticket: entry.ticket }) : fill(strings.take, { alias: entry.alias });
  button.addEventListener("click", () =>
    connection.send({ type: "accept", conversation_id: entry.conversation_id, room: room() }),
  );
  li.append(label, tags, button);
  return li;
}

function crisisAlert(alert) {
  const who = alert.ticket ? `${alert.ticket} (${alert.alias})` : alert.alias;
  $("crisis-banner").textContent = fill(strings.crisis_banner, { who });
  $("crisis-banner").hidden = false;
  document.title = fill(strings.alert_title, { who });
  // The banner and title always; the tone and a desktop notification only for those who
  // opted in (staffwork.js `notify`, called for the same frame).
  setTimeout(() => {
    $("crisis-banner").hidden = true;
    document.title = strings.title;
  }, 60000);
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
    tab.id = `tab-${summary.id}`;
    tab.setAttribute("aria-controls", pane.id);
    pane.setAttribute("aria-labelledby", tab.id);
    tab.addEventListener("click", () => activate(summary.id));
    const view = new ChatView({ list: pane.querySelector(".messages"), typing: pane.querySelector(".typing"),
      me: "staff", strings });
    c = { summary, view, pane, tab, unread: 0 };
    conversations.set(summary.id, c);
    wirePane(c);
    work.decorate(c);
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
  c.pane.querySelector(".close-tab").addEventListener("click", () => closeTab(id));
  c.pane.querySelector(".arrived").addEventListener("click", () => connection.send({ type: "arrived", conversation_id: id }));
  c.pane.querySelector(".no-show").addEventListener("click", () => connection.send({ type: "no_show", conversation_id: id }));
}

function renderConversation(c) {
  const s = c.summary;
  const name = s.ticket ? `${s.ticket} ${s.alias}` : s.alias;
  c.tab.textContent = (s.crisis ? "(!) " : "") + (c.unread ? `${name} (${c.unread})` : name);
  c.tab.setAttribute("aria-selected", String(activeId === s.id));
  c.tab.tabIndex = activeId === s.id ? 0 : -1; // one tab stop; the arrow keys move between tabs
  c.pane.hidden = activeId !== s.id;
  c.pane.querySelector(".chat-state").textContent = fill(
    s.state === "active" ? strings.chatting_with : strings.conversation_ended,
    { alias: s.alias },
  );
  c.pane.querySelector(".composer").hidden = s.state !== "active";
  c.pane.querySelector(".end").hidden = s.state !== "active";
  const waitingForArrival = s.channel === "dropin" && s.state === "active" && !s.arrived;
  c.pane.querySelector(".arrived").hidden = !waitingForArrival;
  c.pane.querySelector(".no-show").hidden = !waitingForArrival;
  if (waitingForArrival) {
    c.pane.querySelector(".chat-state").textContent = s.room
      ? fill(strings.called_to_room, { ticket: s.ticket, room: s.room })
      : fill(strings.called_to_you, { ticket: s.ticket });
  }
  if (s.state === "no_show") c.pane.querySelector(".chat-state").textContent = fill(strings.no_show, { ticket: s.ticket });
  if (c.transferredTo) {
    c.pane.querySelector(".chat-state").textContent = c.passedTo
      ? fill(strings.passed_to, { name: c.transferredTo.display_name, service: c.passedTo.service || "" })
      : fill(strings.handed_over, { name: c.transferredTo.display_name });
    for (const selector of [".composer", ".end", ".arrived", ".no-show"]) c.pane.querySelector(selector).hidden = true;
  }
  c.pane.querySelector(".close-tab").hidden = s.state === "active" && !c.transferredTo;
  work.renderPane(c);
}

// An ended or handed-over conversation stays on screen until its tab is closed.
function closeTab(id) {
  const c = conversations.get(id);
  if (!c) return;
  c.tab.remove();
  c.pane.remove();
  conversations.delete(id);
  if (activeId === id) {
    activeId = null;
    const next = conversations.keys().next();
    if (!next.done) activate(next.value);
  }
  $("no-conversations").hidden = conversations.size > 0;
  // The Close button is gone: keep the keyboard where the conversations are.
  if (!document.activeElement || document.activeElement === document.body) {
    (activeId ? conversations.get(activeId).tab : $("no-conversations")).focus();
  }
}

// The tab list as the ARIA tabs pattern has it: arrow keys, Home and End choose a tab.
$("tabs").addEventListener("keydown", (event) => {
  const tabs = [...$("tabs").querySelectorAll("[role=tab]")];
  const at = tabs.indexOf(document.activeElement);
  const to = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: -1 }[event.key];
  if (at < 0 || to === undefined) return;
  event.preventDefault();
  const tab = tabs[(to + tabs.length) % tabs.length];
  tab.focus();
  tab.click();
});

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
  if (work.onFrame(frame)) return;
  switch (frame.type) {
    case "welcome": {
      renderQueue(frame.queue);
      $("my-status").value = frame.status;
      work.me = frame.staff;
      work.welcome(frame);
      const open = new Set(frame.conversations.map((summary) => summary.id));
      for (const c of conversations.values()) {
        c.readSent = 0;
        // Ended or handed over while this page was offline.
        if (!open.has(c.summary.id) && c.summary.state === "active") {
          c.summary.state = "ended";
          renderConversation(c);
        }
      }
      for (const summary of frame.conversations) ensureConversation(summary);
      break;
    }
    case "queue.update":
      renderQueue(frame.queue);
      work.queueChanged(frame.queue);
      break;
    case "transferred":
    case "passed":
      if (c) renderConversation(c);
      break;
    case "crisis.alert":
      crisisAlert(frame);
      break;
    case "status":
      $("my-status").value = frame.status;
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
$("take-next").addEventListener("click", () => connection.send({ type: "claim_next", room: room() }));
$("my-status").addEventListener("change", () => connection.send({ type: "status", status: $("my-status").value }));
connection.start();
