// The youth page: choose whom to talk to, wait with an honest estimate, chat; drop-in
// tickets on the youth's own phone. The token lives only in this browser.
import { ChatView, typingNotifier } from "./chatview.js";
import { ConsentView } from "./consent.js";
import { Connection, newClientId } from "./connection.js";
import { onQuickExit } from "./quickexit.js";
import { etaText as formatEta } from "./waittext.js";

const strings = JSON.parse(document.getElementById("strings").textContent);
const $ = (id) => document.getElementById(id);
const TOKEN = "yh.token";
const site = $("app").dataset.site || null;
const TITLE = document.title;
const LANG = document.documentElement.lang || undefined;

const state = {
  conversationId: null, conversationState: null, staffName: "", pending: null, changing: false, blocked: null,
  aboutDone: new Set(), // conversations whose optional questions were answered or skipped
  aboutSent: false, // an `about` frame waits for its answer (its error goes to that form)
};
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

// -- waiting times in plain words -------------------------------------------------------------

const etaText = (wait) => formatEta(wait, strings);

function when(iso) {
  return new Date(iso).toLocaleString(LANG, { weekday: "long", hour: "2-digit", minute: "2-digit" });
}

// -- who is on now ---------------------------------------------------------------------------

let overview = null;

async function loadOverview() {
  if ($("start").hidden) return;
  try {
    const response = await fetch(`/api/queue/overview${site ? `?site=${encodeURIComponent(site)}` : ""}`);
    if (response.ok) renderOverview(await response.json());
  } catch {
    /* offline: keep what is shown */
  }
}

function choiceButton(label, target, wait) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "choose";
  button.dataset.target = JSON.stringify(target);
  const eta = document.createElement("span");
  eta.className = "eta";
  eta.textContent = etaText(wait);
  button.append(label, " ", eta);
  return button;
}

function renderOverview(data) {
  overview = data;
  const note = $("closed-note");
  note.hidden = data.open;
  if (!data.open) note.textContent = data.opens_at ? strings.closed.replace("{when}", when(data.opens_at)) : strings.closed_never;
  document.querySelector('[data-eta="any"]').textContent = etaText(data.any);
  $("roles").replaceChildren(
    ...data.roles.map((r) => choiceButton(strings.roles[r.role] || r.role, { role: r.role }, r)),
  );
  renderPeople();
  renderPrevious();
}

// People this youth talked with before (from `welcome`): ask for the same person again.
function renderPrevious() {
  const people = state.previous || [];
  $("previous").hidden = people.length === 0;
  const onNow = new Map((overview?.staff || []).map((p) => [p.id, p]));
  $("previous").querySelector("ul").replaceChildren(
    ...people.map((person) => {
      const li = document.createElement("li");
      const here = onNow.get(person.id);
      if (here) li.append(choiceButton(strings.talk_again.replace("{name}", person.display_name), { staff: person.id }, here));
      else li.textContent = strings.not_on_now.replace("{name}", person.display_name);
      return li;
    }),
  );
}

function renderPeople() {
  if (!overview) return;
  const wanted = [...$("interest-filter").querySelectorAll("input:checked")].map((i) => i.value);
  const shares = (person) => wanted.filter((w) => person.interests.includes(w)).length;
  const people = [...overview.staff].sort((a, b) => shares(b) - shares(a));
  $("nobody-on").hidden = people.length > 0;
  $("people").replaceChildren(
    ...people.map((person) => {
      const li = document.createElement("li");
      li.className = "card";
      if (wanted.length && shares(person)) li.classList.add("match");
      const name = document.createElement("h3");
      name.textContent = person.display_name;
      const role = document.createElement("p");
      role.className = "muted";
      role.textContent = person.role_label;
      const bio = document.createElement("p");
      bio.textContent = person.bio;
      const likes = document.createElement("p");
      likes.className = "muted";
      likes.textContent = person.interests.map((i) => strings.interests[i] || i).join(" · ");
      const button = choiceButton(strings.talk_to.replace("{name}", person.display_name), { staff: person.id }, person);
      li.append(name, role, bio, likes, button);
      return li;
    }),
  );
}

// -- the conversation ------------------------------------------------------------------------

let connection = null;

function showStatus(status) {
  const text = { connecting: strings.connecting, online: strings.online, offline: strings.offline,
    unauthorized: strings.session_gone }[status];
  $("status").textContent = text;
  $("status").dataset.state = status;
  if (status === "unauthorized") {
    localStorage.removeItem(TOKEN);
    connection = null;
    if (state.blocked) clearBlocked(); // that identity is gone: a new one starts afresh
    else showStart();
  }
}

function showStart(changing = false) {
  if (state.blocked) return;
  state.changing = changing;
  $("start").hidden = false;
  $("chat").hidden = true;
  $("cancel-change").hidden = !changing;
  loadOverview();
}

function showChat() {
  if (state.blocked) return;
  $("start").hidden = true;
  $("chat").hidden = false;
}

// Staff have paused the chat for this identity for a while (`blocked`): a calm screen with the
// numbers to call and when it ends; no composer, no way to start a chat until then.
let blockTimer = null;

function showBlocked(info) {
  const first = !state.blocked;
  state.blocked = info || {};
  state.pending = null;
  $("start").hidden = true;
  $("chat").hidden = true;
  $("blocked").hidden = false;
  const until = info && info.until ? new Date(info.until) : null;
  $("blocked-until").hidden = !until;
  if (until) {
    const when = until.toLocaleString(LANG, { weekday: "long", day: "numeric", month: "long", hour: "2-digit", minute: "2-digit" });
    $("blocked-until").textContent = strings.blocked_until.replace("{when}", when);
    clearTimeout(blockTimer);
    // At most a week away: well within setTimeout's range.
    blockTimer = setTimeout(clearBlocked, Math.max(0, until - Date.now()) + 1000);
  }
  if (first) $("blocked").focus();
}

function clearBlocked() {
  clearTimeout(blockTimer);
  if (!state.blocked) return;
  state.blocked = null;
  $("blocked").hidden = true;
  view.reset();
  state.conversationId = null;
  state.summary = null;
  showStart();
}

function setConversation(summary) {
  if (state.conversationId !== summary.id) {
    view.reset();
    state.conversationId = summary.id;
    state.joined = null;
    $("feedback").hidden = true;
    $("feedback-thanks").hidden = true;
    $("questions").reset();
    $("questions-thanks").hidden = true;
  }
  state.conversationState = summary.state;
  // Passed to a warm handover's partner: they are the one who answers now.
  state.staffName = summary.staff ? summary.staff.display_name : summary.partner?.name || summary.partner?.service || "";
  state.summary = summary;
  view.setOtherRead(summary.staff_read_seq || 0);
  showChat();
  renderState();
}

function renderQueued(q) {
  const position = q.position ?? "…";
  let text = q.target_name
    ? strings.queued_for.replace("{name}", q.target_name).replace("{position}", position)
    : strings.queued.replace("{position}", position);
  if (q.open === false) {
    text = q.opens_at ? strings.closed.replace("{when}", when(q.opens_at)) : strings.closed_never;
  } else {
    text += " " + etaText(q);
  }
  setState(text);
  $("switch-offer").hidden = !q.switch_offer || state.switchDeclined === q.conversation_id;
  if (q.switch_offer) $("switch-text").textContent = strings.switch_offer.replace("{name}", q.target_name || "");
  $("change-choice").hidden = false;
}

// #chat-state is a live region: setting the same text again would announce it again.
function setState(text) {
  if ($("chat-state").textContent !== text) $("chat-state").textContent = text;
}

function renderState() {
  const s = state.summary || {};
  const open = state.conversationState === "queued" || state.conversationState === "active";
  $("composer").hidden = !open;
  $("end-chat").hidden = !open;
  $("new-chat").hidden = open;
  $("change-choice").hidden = true;
  $("switch-offer").hidden = true;
  // The optional questions: asked while waiting, once per conversation (skippable).
  $("questions").hidden = state.conversationState !== "queued" || state.aboutDone.has(state.conversationId);
  if ($("questions").hidden) $("questions-error").textContent = "";
  const ticket = s.ticket || state.queued?.ticket;
  $("ticket").hidden = !ticket;
  $("ticket").textContent = ticket ? strings.ticket.replace("{ticket}", ticket) : "";
  document.title = TITLE;
  if (state.conversationState === "queued") {
    renderQueued(state.queued || {});
  } else if (state.conversationState === "active") {
    if (s.channel === "dropin" && !s.arrived) {
      const template = s.room ? strings.called : strings.called_no_room;
      setState(template.replace("{room}", s.room || "").replace("{name}", state.staffName));
      alertCalled(s);
    } else if (s.partner) {
      // In plain words who is there now (and, right after the pass, who left).
      setState(state.passed === s.id && state.passedText ? state.passedText
        : strings.partner_leads.replace("{name}", state.staffName).replace("{service}", s.partner.service));
    } else {
      const template = state.joined === state.staffName ? strings.joined : strings.assigned;
      setState(template.replaceAll("{name}", state.staffName));
    }
  } else if (state.conversationState === "no_show") {
    setState(strings.no_show);
  } else {
    setState(strings.ended);
  }
}

let alerted = null;
function alertCalled(summary) {
  document.title = strings.called_title.replace("{ticket}", summary.ticket || "");
  if (alerted === summary.id) return;
  alerted = summary.id;
  if (navigator.vibrate) navigator.vibrate([300, 150, 300, 150, 600]);
  try {
    const audio = new AudioContext();
    const tone = audio.createOscillator();
    tone.frequency.value = 880;
    tone.connect(audio.destination);
    tone.start();
    tone.stop(audio.currentTime + 0.5);
  } catch {
    /* no sound allowed: the title and the text still say it */
  }
}

// -- feedback after a chat (only when staff asked for it) --------------------------------------

function showFeedback(conversationId) {
  const form = $("feedback");
  form.dataset.conversationId = conversationId;
  form.reset();
  $("feedback-error").textContent = "";
  $("feedback-thanks").hidden = true;
  form.hidden = false;
}

$("feedback").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = $("feedback");
  const scores = {};
  for (const name of ["understood", "talked_about", "form", "useful"]) {
    const checked = form.querySelector(`input[name="${name}"]:checked`);
    scores[name] = checked ? Number(checked.value) : null;
  }
  const text = $("feedback-text").value;
  if (connection) connection.send({ type: "feedback", conversation_id: form.dataset.conversationId, scores, text });
});

// -- the optional questions while waiting (answers are only counted) ------------------------

$("questions").addEventListener("submit", (event) => {
  event.preventDefault();
  const frame = { type: "about", conversation_id: state.conversationId };
  for (const name of ["age", "gender", "heard"]) {
    const checked = $("questions").querySelector(`input[name="about-${name}"]:checked`);
    frame[name] = checked ? checked.value : null;
  }
  $("questions-error").textContent = "";
  state.aboutSent = true;
  if (connection) connection.send(frame);
});

$("questions-skip").addEventListener("click", () => {
  state.aboutDone.add(state.conversationId);
  renderState();
});

function markRead() {
  if (document.visibilityState !== "visible" || !connection) return;
  const seq = view.latestFromOther();
  if (seq > (state.readSent || 0)) {
    state.readSent = seq;
    connection.send({ type: "read", seq });
  }
}

function sendPending() {
  if (state.pending && connection && connection.send(state.pending)) state.pending = null;
}

// Answers to a consent question come back as errors with these codes: shown on the card.
const CONSENT_ERRORS = new Set(["stale", "wrong_service", "age_band_required", "bad_age_band", "bad_answer",
  "bad_exceptions", "nothing_shared", "bad_contact", "bad_reason", "not_proposed", "already_answered",
  "consent_expired", "nothing_to_withdraw"]);
const consent = new ConsentView({ root: $("handovers"), strings: strings.consent, send: (frame) => connection && connection.send(frame) });

function onFrame(frame) {
  if (consent.onFrame(frame)) return;
  switch (frame.type) {
    case "joined":
      $("chat-state").textContent = strings.partner_joined.replace("{name}", frame.name);
      break;
    case "welcome":
      state.readSent = 0;
      consent.set(frame.handovers || []);
      state.previous = frame.previous_staff || [];
      renderPrevious();
      if (frame.blocked) {
        showBlocked(frame.blocked);
        break;
      }
      clearBlocked();
      if (frame.conversation) setConversation(frame.conversation);
      else if (state.conversationId && ["queued", "active"].includes(state.conversationState)) {
        state.conversationState = "ended";
        renderState();
      }
      if (state.pending && (state.pending.type === "crisis" || !frame.conversation)) sendPending();
      else state.pending = null;
      if (!frame.conversation && !state.conversationId && !state.pending) showStart();
      break;
    case "queued":
      state.queued = frame;
      if (frame.conversation_id !== state.conversationId) {
        setConversation({ id: frame.conversation_id, state: "queued", staff: null, ticket: frame.ticket });
      } else {
        state.conversationState = "queued";
        renderState();
      }
      break;
    case "assigned": {
      // A colleague took over (a transfer): say so, so the youth knows whom they talk to.
      const name = frame.conversation.staff?.display_name;
      const same = frame.conversation.id === state.conversationId;
      if (same && state.staffName && name && name !== state.staffName) state.joined = name;
      setConversation(frame.conversation);
      break;
    }
    case "passed":
      // The staff member let go; the service's partner continues the chat.
      if (frame.conversation_id !== state.conversationId) break;
      state.passed = frame.conversation_id;
      state.passedText = strings.passed
        .replace("{staff}", frame.from || "")
        .replace("{name}", frame.partner?.name || frame.partner?.service || "")
        .replace("{service}", frame.partner?.service || "");
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
      if (frame.reader !== "youth") view.setOtherRead(frame.seq); // staff, or the partner leading it
      break;
    case "ended":
      if (frame.conversation_id === state.conversationId) {
        state.conversationState = frame.state;
        renderState();
        if (frame.feedback && frame.state === "ended") showFeedback(frame.conversation_id);
      }
      break;
    case "about.thanks":
      state.aboutSent = false;
      state.aboutDone.add(frame.conversation_id);
      renderState();
      $("questions-thanks").hidden = false;
      break;
    case "feedback.thanks":
      $("feedback").hidden = true;
      $("feedback-thanks").hidden = false;
      break;
    case "crisis_info":
      if (!state.blocked) $("crisis-sent").hidden = false;
      break;
    case "blocked":
      showBlocked(frame);
      break;
    case "unblocked":
      clearBlocked();
      break;
    case "error":
      if (frame.client_id) {
        connection.discard(frame.client_id);
        view.dropPending(frame.client_id);
      }
      if (frame.code === "no_conversation" || frame.code === "closed" && state.conversationId) {
        state.conversationState = "ended";
        renderState();
      }
      if (frame.code === "blocked") {
        showBlocked(state.blocked);
        break;
      }
      if (state.aboutSent && !$("questions").hidden) {
        state.aboutSent = false;
        if (frame.code === "conflict") {
          // Answered already (another tab, or before a reload): nothing more to ask.
          state.aboutDone.add(state.conversationId);
          renderState();
          $("questions-thanks").hidden = false;
        } else $("questions-error").textContent = frame.message;
      } else if (CONSENT_ERRORS.has(frame.code)) consent.showError(frame.message);
      else if (!$("feedback").hidden) $("feedback-error").textContent = frame.message;
      else if (!$("start").hidden) $("start-error").textContent = frame.message;
      else $("composer-error").textContent = frame.message;
      break;
  }
}

async function connect() {
  const token = await ensureToken();
  if (connection) return;
  connection = new Connection({
    path: "/ws/youth/",
    hello: () => ({ type: "hello", token, conversation_id: state.conversationId, last_seq: view.latestSeq }),
    onFrame,
    onStatus: showStatus,
    outboxKey: "yh.outbox",
  });
  for (const pending of connection.outbox) view.addPending(pending.client_id, pending.text);
  connection.start();
}

async function send(frame) {
  $("start-error").textContent = "";
  state.pending = frame;
  try {
    await connect();
    sendPending();
  } catch (error) {
    $("start-error").textContent = error.message;
  }
}

function choose(target) {
  if (state.changing) {
    state.changing = false;
    state.switchDeclined = null; // a new choice: its own switch offer later
    showChat();
    connection.send({ type: "change", target });
    return;
  }
  const frame = { type: "request", target };
  if (site) frame.site = site;
  send(frame);
}

$("start").addEventListener("click", (event) => {
  const button = event.target.closest("button.choose");
  if (button) choose(button.dataset.target === "any" ? "any" : JSON.parse(button.dataset.target));
});
$("interest-filter").addEventListener("change", renderPeople);
$("cancel-change").addEventListener("click", () => {
  state.changing = false;
  showChat();
});
$("change-choice").addEventListener("click", () => showStart(true));
$("switch-yes").addEventListener("click", () => connection && connection.send({ type: "change", target: "any" }));
$("switch-no").addEventListener("click", () => {
  state.switchDeclined = state.conversationId; // keep waiting: do not ask again for this request
  $("switch-offer").hidden = true;
});
$("not-safe").addEventListener("click", () => {
  // The numbers first, at once, whatever the network does.
  $("crisis").scrollIntoView({ block: "start" });
  $("crisis").focus();
  if (!state.blocked) send({ type: "crisis" }); // blocked: no chat now, the numbers are all
});

const typing = typingNotifier((active) => connection && connection.send({ type: "typing", active }));
$("new-chat").addEventListener("click", () => {
  $("feedback").hidden = true;
  $("feedback-thanks").hidden = true;
  view.reset();
  state.conversationId = null;
  state.summary = null;
  showStart();
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

async function resume(code) {
  const data = await post("/api/youth/resume", { return_code: code });
  localStorage.setItem(TOKEN, data.token);
}

$("resume").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("resume-error").textContent = "";
  try {
    await resume($("resume-code").value);
    location.reload();
  } catch (error) {
    $("resume-error").textContent = error.message;
  }
});

// Quick exit (quickexit.js): end the chat on the open socket, then let the page go.
onQuickExit(() => {
  if (connection) {
    connection.send({ type: "end" });
    connection.stop();
    connection = null;
  }
});

// The installable app: a service worker that keeps only the app shell (see /sw.js).
function registerServiceWorker() {
  if (!("serviceWorker" in navigator)) return;
  navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {
    /* no offline start: everything else works the same */
  });
}

async function boot() {
  // A kiosk ticket's QR code: /#resume=CODE. The fragment never reaches the server's logs.
  if (location.hash.startsWith("#resume=")) {
    const code = decodeURIComponent(location.hash.slice("#resume=".length));
    history.replaceState(null, "", location.pathname + location.search);
    try {
      await resume(code);
    } catch (error) {
      $("resume-error").textContent = error.message;
    }
  }
  // Someone who already has a session goes straight back into it.
  if (localStorage.getItem(TOKEN)) connect();
  else $("status").textContent = "";
  loadOverview();
  setInterval(loadOverview, 20000);
  registerServiceWorker();
}
boot();
