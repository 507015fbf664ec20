// The youth page: anonymous session, queue, chat. Token lives only in this browser.
import { ChatView, typingNotifier } from "./chatview.js";
import { Connection, newClientId } from "./connection.js";

const strings = JSON.parse(document.getElementById("strings").textContent);
const $ = (id) => document.getElementById(id);
const TOKEN = "yh.token";

const state = { conversationId: null, conversationState: null, staffName: "" };
const view = new ChatView({ list: $("messages"), typing: $("typing"), me: "youth", strings });

async function post(path, body, token) {
  const headers = { "Content-Type": "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(path, { method: "POST", headers, body: JSON.stringify(body || {}) });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw Object.assign(new Error(data.error?.message || strings.error), { code: data.error?.code });
  return data;
}

async function ensureToken() {
  let token = localStorage.getItem(TOKEN);
  if (!token) {
    const data = await post("/api/youth/session");
    token = data.token;
    localStorage.setItem(TOKEN, token);
  }
  return token;
}

let connection = null;

function showStatus(status) {
  const text = { connecting: strings.connecting, online: strings.online, offline: strings.offline,
    unauthorized: strings.session_gone }[status];
  $("status").textContent = text;
  $("status").dataset.state = status;
  if (status === "unauthorized") {
    localStorage.removeItem(TOKEN);
    connection = null;
    showStart();
  }
}

function showStart() {
  $("start").hidden = false;
  $("chat").hidden = true;
}

function showChat() {
  $("start").hidden = true;
  $("chat").hidden = false;
}

function setConversation(summary) {
  if (state.conversationId !== summary.id) {
    view.reset();
    state.conversationId = summary.id;
  }
  state.conversationState = summary.state;
  state.staffName = summary.staff ? summary.staff.display_name : "";
  view.setOtherRead(summary.staff_read_seq || 0);
  showChat();
  renderState();
}

function renderState(position) {
  const open = state.conversationState === "queued" || state.conversationState === "active";
  $("composer").hidden = !open;
  $("end-chat").hidden = !open;
  $("new-chat").hidden = open;
  if (state.conversationState === "queued") {
    $("chat-state").textContent = strings.queued.replace("{position}", position ?? "…");
  } else if (state.conversationState === "active") {
    $("chat-state").textContent = strings.assigned.replace("{name}", state.staffName);
  } else {
    $("chat-state").textContent = strings.ended;
  }
}

function markRead() {
  if (document.visibilityState !== "visible" || !connection) return;
  const seq = view.latestFromOther();
  if (seq > (state.readSent || 0)) {
    state.readSent = seq;
    connection.send({ type: "read", seq });
  }
}

function onFrame(frame) {
  switch (frame.type) {
    case "welcome":
      state.readSent = 0;
      if (frame.conversation) setConversation(frame.conversation);
      else if (state.conversationId && state.conversationState !== "ended") {
        state.conversationState = "ended";
        renderState();
      } else if (!state.conversationId) connection.send({ type: "request", target: "any" });
      break;
    case "queued":
      if (frame.conversation_id !== state.conversationId) {
        setConversation({ id: frame.conversation_id, state: "queued", staff: null });
      }
      renderState(frame.position);
      break;
    case "assigned":
      setConversation(frame.conversation);
      break;
    case "message":
      if (frame.conversation_id === state.conversationId) {
        view.add(frame);
        markRead();
      }
      break;
    case "history":
      for (const message of frame.messages) view.add(message);
      if (!frame.complete) connection.send({ type: "sync", after_seq: view.latestSeq });
      markRead();
      break;
    case "resync_required":
      view.reset();
      connection.send({ type: "sync", after_seq: 0 });
      break;
    case "typing":
      view.showTyping(state.staffName, frame.active);
      break;
    case "read":
      if (frame.reader === "staff") view.setOtherRead(frame.seq);
      break;
    case "ended":
      if (frame.conversation_id === state.conversationId) {
        state.conversationState = frame.state;
        renderState();
      }
      break;
    case "error":
      if (frame.client_id) {
        connection.discard(frame.client_id);
        view.dropPending(frame.client_id);
      }
      if (frame.code === "no_conversation" || frame.code === "closed") {
        state.conversationState = "ended";
        renderState();
      }
      $("composer-error").textContent = frame.message;
      break;
  }
}

async function start({ wantChat }) {
  state.wantChat = wantChat;
  $("start-chat").disabled = true;
  try {
    const token = await ensureToken();
    if (connection) {
      if (wantChat) connection.send({ type: "request", target: "any" });
      return;
    }
    connection = new Connection({
      path: "/ws/youth/",
      hello: () => ({
        type: "hello",
        token,
        conversation_id: state.conversationId,
        last_seq: view.latestSeq,
      }),
      onFrame,
      onStatus: showStatus,
      outboxKey: "yh.outbox",
    });
    for (const pending of connection.outbox) view.addPending(pending.client_id, pending.text);
    connection.start();
  } catch (error) {
    $("composer-error").textContent = error.message;
  } finally {
    $("start-chat").disabled = false;
  }
}

const typing = typingNotifier((active) => connection && connection.send({ type: "typing", active }));

$("start-chat").addEventListener("click", () => start({ wantChat: true }));
$("new-chat").addEventListener("click", () => {
  view.reset();
  state.conversationId = null;
  connection.send({ type: "request", target: "any" });
});
$("end-chat").addEventListener("click", () => connection && connection.send({ type: "end" }));
$("text").addEventListener("input", () => typing.input());
$("text").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    $("composer").requestSubmit();
  }
});
$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("text").value;
  $("composer-error").textContent = "";
  if (!text.trim() || !connection) return;
  if (text.length > Number($("app").dataset.maxText)) {
    $("composer-error").textContent = strings.too_long;
    return;
  }
  const message = connection.sendMessage({ client_id: newClientId(), text });
  view.addPending(message.client_id, text);
  $("text").value = "";
  typing.stop();
});
document.addEventListener("visibilitychange", markRead);

$("show-code").addEventListener("click", async () => {
  try {
    const token = await ensureToken();
    const data = await post("/api/youth/return-code", {}, token);
    $("my-code").textContent = data.return_code;
  } catch (error) {
    $("my-code").textContent = error.message;
  }
});
$("resume").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("resume-error").textContent = "";
  try {
    const data = await post("/api/youth/resume", { return_code: $("resume-code").value });
    localStorage.setItem(TOKEN, data.token);
    location.reload();
  } catch (error) {
    $("resume-error").textContent = error.message;
  }
});

// Someone who already has a session goes straight back into it.
if (localStorage.getItem(TOKEN)) start({ wantChat: false });
else $("status").textContent = "";
