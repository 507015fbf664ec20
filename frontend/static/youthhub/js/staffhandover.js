// The dashboard's handover tool: propose a warm handover to a service from the directory,
// follow its state (the youth's answer, the service's answer), close it when done.
// Rules: docs/handover.md. Nothing is shared until the youth says yes on their own page.
import { el } from "./dom.js";

// States in which staff may still change what the youth is asked (handover_revise).
const EDITABLE = ["draft", "proposed", "changes_requested"];
const SECTIONS = ["concern", "own_words", "tried", "assessment", "interim_plan", "who_does_what", "existing_plan"];

export class HandoverTool {
  constructor({ connection, strings, fill, lang }) {
    Object.assign(this, { connection, s: strings, fill, lang });
    this.services = [];
    this.handovers = new Map(); // id -> staff card
    this.panes = new Map(); // conversation id -> pane
  }

  welcome(frame) {
    this.services = frame.services || [];
    this.handovers = new Map((frame.handovers || []).map((h) => [h.id, h]));
    for (const [id, pane] of this.panes) {
      this.fillServices(pane);
      this.render(id);
    }
    this.renderAll();
    this.consultations = frame.consultations || [];
    this.renderConsultations();
  }

  // Anonymous consultations (Asker's pattern): a question to a service without naming anyone.
  wireConsultations() {
    const form = document.getElementById("consult-form");
    if (!form || form.dataset.wired) return;
    form.dataset.wired = "1";
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const service = Number(form.querySelector("select").value);
      const question = form.querySelector("textarea").value.trim();
      if (!service || !question) return;
      this.connection.send({ type: "consultation_ask", service, question });
      form.querySelector("textarea").value = "";
    });
  }

  renderConsultations() {
    this.wireConsultations();
    const select = document.querySelector("#consult-form select");
    if (select && select.options.length <= 1) {
      select.append(...this.services.map((s) => el("option", { value: String(s.id), textContent: s.name })));
    }
    const list = document.getElementById("consultations");
    if (!list) return;
    list.replaceChildren(
      ...this.consultations.map((c) => el("li", {},
        el("p", { className: "muted", textContent: `${c.service.name} · ${new Date(c.created_at).toLocaleString(this.lang)}` }),
        el("p", { textContent: c.question ?? "…" }),
        el("p", { className: c.answer ? "answer" : "muted", textContent: c.answer ? `${c.answered_by || c.service.name}: ${c.answer}` : this.s.not_answered }))),
    );
  }

  // Every handover this person sent or follows, in the left column: the sender stays
  // responsible until the service answers, also after the chat ended. Supervisors: every
  // overdue one too (in the welcome list after a reconnect, and as handover_tick flags it).
  renderAll() {
    const open = [...this.handovers.values()].filter((h) => !["closed", "withdrawn", "expired"].includes(h.state));
    const panel = document.getElementById("handovers-panel");
    if (!panel) return;
    panel.hidden = open.length === 0;
    document.getElementById("handovers-all").replaceChildren(
      ...open.map((card) => {
        const li = el("li", { className: card.overdue ? "overdue" : "" }, el("span", { textContent: `${card.alias} → ${this.stateText(card)}` }));
        li.dataset.handoverId = card.id;
        return li;
      }),
    );
  }

  decorate(c) {
    const pane = c.pane;
    const id = c.summary.id;
    this.panes.set(id, pane);
    const form = pane.querySelector(".handover-panel");
    for (const textarea of form.querySelectorAll("textarea[data-section]")) {
      textarea.id = `${textarea.dataset.section}-${id}`;
      textarea.previousElementSibling.htmlFor = textarea.id;
    }
    for (const radio of form.querySelectorAll("input[name^=reach]")) radio.name = `reach-${id}`;
    this.fillServices(pane);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const summary = {};
      for (const key of SECTIONS) {
        const text = form.querySelector(`textarea[data-section=${key}]`).value.trim();
        if (text) summary[key] = text;
      }
      const service = form.querySelector(".handover-service").value;
      const reach = form.querySelector("input[name^=reach]:checked")?.value;
      if (!service || !reach) {
        form.querySelector(".handover-error").textContent = this.s.choose_service;
        return;
      }
      form.querySelector(".handover-error").textContent = "";
      const proposal = { reach, named_person: form.querySelector(".handover-person").value.trim(), summary };
      // The youth asked for changes (or has not answered yet): the same service's open
      // handover is revised and shown to them again; a new proposal would be a conflict.
      const open = this.editable(id, Number(service));
      if (open) this.connection.send({ type: "handover_revise", handover_id: open.id, ...proposal });
      else this.connection.send({ type: "handover_propose", conversation_id: id, service: Number(service), ...proposal });
    });
    form.querySelector(".handover-service").addEventListener("change", () => this.describe(pane));
    this.render(id);
  }

  editable(conversationId, serviceId) {
    return [...this.handovers.values()].find((h) => h.conversation_id === conversationId
      && h.service.id === serviceId && EDITABLE.includes(h.state));
  }

  // "Change and ask again": the form, set to this handover's service, reach and person.
  revise(conversationId, card) {
    const pane = this.panes.get(conversationId);
    const form = pane.querySelector(".handover-panel");
    form.hidden = false;
    pane.querySelector(".handover-service").value = String(card.service.id);
    this.describe(pane);
    const reach = form.querySelector(`input[name^=reach][value=${card.reach}]`);
    if (reach) reach.checked = true;
    form.querySelector(".handover-person").value = card.named_person || "";
    form.querySelector("textarea[data-section]").focus();
  }

  fillServices(pane) {
    const select = pane.querySelector(".handover-service");
    const chosen = select.value;
    select.replaceChildren(
      el("option", { value: "", textContent: this.s.pick_service }),
      ...this.services.map((s) => el("option", { value: String(s.id), textContent: s.name })),
    );
    select.value = chosen;
    this.describe(pane);
  }

  describe(pane) {
    const service = this.services.find((s) => String(s.id) === pane.querySelector(".handover-service").value);
    const text = service
      ? this.fill(this.s.service_info, { offers: service.offers || "", days: service.reply_days ?? "?" })
      : "";
    pane.querySelector(".handover-service-info").textContent = text;
  }

  onFrame(frame) {
    if (frame.type === "handover.update") {
      const card = frame.handover;
      this.handovers.set(card.id, card);
      if (card.conversation_id) this.render(card.conversation_id);
      this.renderAll();
      return true;
    }
    if (frame.type === "consultation.sent" || frame.type === "consultation.update") {
      this.connection.send({ type: "consultations" });
      return true;
    }
    if (frame.type === "consultations") {
      this.consultations = frame.items;
      this.renderConsultations();
      return true;
    }
    return false;
  }

  stateText(card) {
    const base = this.s.states[card.state] || card.state;
    const who = card.service.name + (card.named_person ? ` (${card.named_person})` : "");
    let text = `${who}: ${base}`;
    if (card.answer?.first_meeting_at) {
      text += " " + this.fill(this.s.first_meeting, {
        when: new Date(card.answer.first_meeting_at).toLocaleString(this.lang, { weekday: "long", day: "numeric", month: "long", hour: "2-digit", minute: "2-digit" }),
      });
    }
    if (card.overdue) text += " " + this.s.overdue;
    return text;
  }

  // What the youth answered and why, what to do about it (guidance), and a decline's reason
  // and alternative: the texts come only to the staff responsible (the sender and the
  // conversation's staff member); a supervisor's card has the facts without them.
  details(card) {
    const lines = [];
    const answer = card.youth_answer;
    if (answer && !["proposed", "draft"].includes(card.state)) {
      lines.push(el("p", { className: "handover-answer", textContent: this.s.youth_answer[answer.answer] || answer.answer }));
      if (answer.reason) lines.push(el("p", { className: "handover-reason", textContent: this.fill(this.s.youth_reason, { reason: answer.reason }) }));
    }
    for (const key of card.guidance || []) {
      if (this.s.guidance[key]) lines.push(el("p", { className: "handover-guidance note", textContent: this.s.guidance[key] }));
    }
    if (card.decline) {
      if (card.decline.reason) lines.push(el("p", { className: "handover-decline", textContent: this.fill(this.s.decline_reason, { reason: card.decline.reason }) }));
      if (card.decline.alternative) lines.push(el("p", { className: "handover-alternative", textContent: this.fill(this.s.alternative, { alternative: card.decline.alternative }) }));
    }
    const other = card.answer?.alternative_service;
    if (other) lines.push(el("p", { className: "handover-alternative-service", textContent: this.fill(this.s.alternative_service, { service: other.name }) }));
    return lines.length ? el("div", { className: "handover-details" }, ...lines) : null;
  }

  render(conversationId) {
    const pane = this.panes.get(conversationId);
    if (!pane) return;
    const cards = [...this.handovers.values()].filter((h) => h.conversation_id === conversationId);
    const list = pane.querySelector(".handover-list");
    list.replaceChildren(
      ...cards.map((card) => {
        const li = el("li", { className: `handover-card state-${card.state}` }, el("span", { textContent: this.stateText(card) }), this.details(card));
        li.dataset.handoverId = card.id;
        if (EDITABLE.includes(card.state)) {
          const revise = el("button", { type: "button", className: "revise-handover", textContent: this.s.revise });
          revise.addEventListener("click", () => this.revise(conversationId, card));
          li.append(" ", revise);
        }
        // Warm handover: once someone from the service is in the chat, staff may let them
        // continue it (the conversation stays open, led by the partner; this person lets go).
        const chat = card.chat;
        if (chat?.passed_at) {
          li.append(el("p", { className: "handover-passed note", textContent: this.fill(this.s.passed, { name: chat.partner || card.service.name }) }));
        } else if (chat?.joined && ["sent", "accepted"].includes(card.state)) {
          li.append(el("p", { className: "handover-joined note", textContent: this.fill(this.s.joined, { name: chat.partner || card.service.name }) }));
          const pass = el("button", { type: "button", className: "pass-handover primary", textContent: this.fill(this.s.pass, { name: chat.partner || card.service.name }) });
          pass.addEventListener("click", () => this.connection.send({ type: "handover_pass", handover_id: card.id }));
          li.append(pass);
        }
        if (["draft", "proposed", "changes_requested", "refused", "declined", "met"].includes(card.state)) {
          const close = el("button", { type: "button", className: "close-handover", textContent: this.s.close });
          close.addEventListener("click", () => this.connection.send({ type: "handover_close", handover_id: card.id }));
          li.append(" ", close);
        }
        return li;
      }),
    );
    pane.querySelector(".show-handover").textContent = cards.some((h) => !["closed", "withdrawn", "expired"].includes(h.state))
      ? this.fill(this.s.button_active, { n: cards.length })
      : this.s.button;
  }
}
