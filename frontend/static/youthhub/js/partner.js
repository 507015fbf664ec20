// The partner's chat page (warm handover): someone from the receiving service in the youth's
// chat, from the moment they joined, while the youth's consent holds. Socket /ws/partner/;
// every text comes from the page (json_script "strings"), none is written here.
import { ChatView, typingNotifier } from "./chatview.js";
import { Connection } from "./connection.js";

const strings = JSON.parse(document.getElementById("strings").textContent);
const $ = (id) => document.getElementById(id);
const root = $("partner-chat");
const conversationId = root.dataset.conversation;
const maxText = Number(root.dataset.maxText) || 0;
const OUTBOX = `yh.partner.outbox.${conversationId}`;

const names = { youth: root.dataset.alias || strings.youth, staff: strings.staff };
const view = new ChatView({ list: $("messages"), typing: $("typing"), me: "partner", strings });
let finished = false;

function showStatus(status) {
  const element = $("status");
  const text = strings.status[status] || "";
  if (element.textContent !== text) element.textContent = text;
  element.dataset.state = status;
  // Logged out (here or elsewhere), deactivated, or the login expired: nothing of the chat
  // stays on screen; log in again and come back here.
  if (status === "unauthorized") {
    closeChat(text);
    location.assign(`/staff/login/?next=${encodeURIComponent(location.pathname)}`);
  }
}

const connection = new Connection({
  path: "/ws/partner/",
  hello: () => ({ type: "hello", conversation_id: conversationId, last_seq: view.latestSeq }),
  onFrame,
  onStatus: showStatus,
  outboxKey: OUTBOX,
});
const typing = typingNotifier((active) => connection.send({ type: "typing", active }));

function setComposer(enabled) {
  $("text").disabled = !enabled;
  $("composer").querySelector("button[type=submit]").disabled = !enabled;
}

// Consent withdrawn (or the socket refused us): nothing of the conversation stays on screen,
// nothing unsent is kept, and the page stops reconnecting.
function closeChat(message) {
  if (finished) return;
  finished = true;
  typing.stop();
  connection.stop();
  connection.outbox = [];
  localStorage.removeItem(OUTBOX);
  view.reset();
  $("typing").textContent = "";
  $("chat").hidden = true;
  $("chat-intro").hidden = true;
  $("joined").hidden = true;
  $("lead").hidden = true;
  $("end-tools").hidden = true;
  $("closed-text").textContent = message;
  $("closed").hidden = false;
  $("closed").focus();
  $("status").textContent = "";
}

// The staff member passed the chat to us: we lead it now, answer read receipts and end it.
let leading = false;
let readSent = 0;
function lead(text) {
  leading = true;
  $("lead").textContent = text;
  $("lead").hidden = false;
  $("end-tools").hidden = finished;
  markRead();
}

function markRead() {
  if (!leading || finished || document.visibilityState !== "visible") return;
  let seq = 0;
  for (const frame of view.messages.values()) if (frame.sender === "youth") seq = Math.max(seq, frame.seq);
  if (seq > readSent) {
    readSent = seq;
    connection.send({ type: "read", seq });
  }
}

function chatEnded() {
  if (finished) return;
  finished = true;
  typing.stop();
  connection.stop();
  setComposer(false);
  $("end-tools").hidden = true;
  $("ended").textContent = strings.ended;
  $("ended").hidden = false;
  $("status").textContent = "";
}

function onFrame(frame) {
  switch (frame.type) {
    case "welcome": {
      const conversation = frame.conversation || {};
      if (conversation.alias) names.youth = conversation.alias;
      if (conversation.staff?.display_name) names.staff = conversation.staff.display_name;
      readSent = 0;
      if (conversation.state && conversation.state !== "active") chatEnded();
      else if (conversation.partner) lead(strings.leading);
      break;
    }
    case "passed":
      if (frame.conversation_id === conversationId) lead(strings.passed.replace("{staff}", frame.from || names.staff));
      break;
    case "message":
      if (frame.conversation_id === conversationId) {
        view.add(frame);
        markRead();
      }
      break;
    case "history":
      for (const message of frame.messages) view.add(message);
      markRead();
      if (!frame.complete) connection.send({ type: "sync", after_seq: view.latestSeq });
      break;
    case "resync_required":
      view.reset();
      connection.send({ type: "sync", after_seq: 0 });
      break;
    case "typing":
      if (frame.who !== "partner") view.showTyping(names[frame.who] || "", frame.active);
      break;
    case "read":
      if (frame.reader === "youth") view.setOtherRead(frame.seq);
      break;
    case "joined":
      $("joined").textContent = strings.joined
        .replace("{name}", frame.name || "")
        .replace("{service}", frame.service || "");
      $("joined").hidden = false;
      break;
    case "ended":
      if (!frame.conversation_id || frame.conversation_id === conversationId) chatEnded();
      break;
    case "closed":
      closeChat(strings.closed[frame.reason] || strings.closed.closed);
      break;
    case "error":
      if (frame.client_id) {
        connection.discard(frame.client_id);
        view.dropPending(frame.client_id);
      }
      if (!connection.ready && ["not_allowed", "not_found"].includes(frame.code)) {
        // The hello was refused: the consent or the chat is gone since the page was opened.
        closeChat(frame.message || strings.refused);
      } else if (frame.code === "closed") {
        chatEnded();
      } else {
        $("composer-error").textContent = frame.message || strings.error;
      }
      break;
  }
}

$("text").addEventListener("input", () => {
  $("composer-error").textContent = "";
  typing.input();
});
$("text").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $("composer").requestSubmit();
  }
});
$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  if (finished) return;
  const text = $("text").value.trim();
  if (!text) return;
  if (maxText && text.length > maxText) {
    $("composer-error").textContent = strings.too_long;
    return;
  }
  const message = connection.sendMessage({ text });
  view.addPending(message.client_id, text);
  $("text").value = "";
  $("composer-error").textContent = "";
  typing.stop();
});

$("end-chat").addEventListener("click", () => {
  $("end-confirm-text").textContent = strings.end_confirm;
  $("end-confirm").hidden = false;
  $("end-chat").hidden = true;
  $("end-yes").focus();
});
$("end-no").addEventListener("click", () => {
  $("end-confirm").hidden = true;
  $("end-chat").hidden = false;
  $("end-chat").focus();
});
$("end-yes").addEventListener("click", () => {
  $("end-confirm").hidden = true;
  $("end-chat").hidden = false;
  connection.send({ type: "end" });
});
document.addEventListener("visibilitychange", markRead);

for (const pending of connection.outbox) view.addPending(pending.client_id, pending.text);
connection.start();
