// The youth's side of a handover: see word for word what would be shared, with whom and for
// how long; answer (yes / yes except some things / change something / no); follow the
// status; withdraw at any time. Rules: docs/handover.md.
import { el } from "./dom.js";

const AGREEING = ["agree", "agree_except"];

export class ConsentView {
  // root: the #handovers section; send(frame): through the youth's socket.
  constructor({ root, strings, send }) {
    Object.assign(this, { root, s: strings, send });
    this.handovers = new Map();
    this.codes = new Map(); // handover id -> code shown once
  }

  set(list) {
    this.handovers = new Map(list.map((h) => [h.id, h]));
    this.render();
  }

  onFrame(frame) {
    if (frame.type === "consent.request" || frame.type === "handover.update") {
      this.handovers.set(frame.handover.id, frame.handover);
      this.render();
      return true;
    }
    if (frame.type === "consent.result") {
      this.handovers.set(frame.handover.id, frame.handover);
      if (frame.code) this.codes.set(frame.handover.id, frame.code);
      this.render();
      return true;
    }
    return false;
  }

  showError(message) {
    const box = this.root.querySelector(".consent-error");
    if (box) box.textContent = message;
  }

  render() {
    const cards = [...this.handovers.values()];
    this.root.hidden = cards.length === 0;
    this.root.querySelector(".handover-cards").replaceChildren(...cards.map((h) => this.card(h)));
  }

  card(h) {
    const article = el("article", { className: `consent-card state-${h.state}` });
    article.dataset.handoverId = h.id;
    const who = h.named_person ? `${h.service.name} (${h.named_person})` : h.service.name;
    article.append(
      el("h4", { textContent: who }),
      el("p", { className: "status", textContent: h.status }),
    );
    if (h.service.description) article.append(el("p", { className: "muted", textContent: h.service.description }));
    const code = this.codes.get(h.id);
    if (code) article.append(el("p", { className: "code", textContent: this.s.your_code.replace("{code}", code) }));
    if (h.sections && h.sections.length) {
      article.append(el("p", { textContent: h.ask ? this.s.would_share : this.s.shared }));
      const list = el("dl", { className: "shared" });
      for (const section of h.sections) list.append(el("dt", { textContent: section.label }), el("dd", { textContent: section.text }));
      article.append(list);
    }
    if (h.not_shared_topics?.length) {
      article.append(el("p", { className: "muted", textContent: this.s.not_shared.replace("{topics}", h.not_shared_topics.map((t) => t.label).join(", ")) }));
    }
    if (h.ask) article.append(this.form(h));
    if (h.consent?.can_withdraw) {
      const button = el("button", { type: "button", className: "withdraw", textContent: this.s.withdraw });
      button.addEventListener("click", () => this.send({ type: "consent_withdraw", handover_id: h.id }));
      article.append(el("p", { className: "muted", textContent: this.s.withdraw_help }), button);
    }
    return article;
  }

  form(h) {
    const ask = h.ask;
    const id = h.id;
    const form = el("form", { className: "consent-form" });
    form.append(el("p", { textContent: this.s.question.replace("{service}", h.service.name).replace("{days}", ask.expires_days) }));
    const answers = el("fieldset", {}, el("legend", { textContent: this.s.your_answer }));
    for (const answer of ask.answers) {
      answers.append(el("label", { className: "check" },
        el("input", { type: "radio", name: `answer-${id}`, value: answer, required: true }), ` ${this.s.answers[answer]}`));
    }
    const except = el("fieldset", { className: "except", hidden: true }, el("legend", { textContent: this.s.leave_out }));
    for (const item of [...ask.may_except.sections, ...ask.may_except.topics]) {
      except.append(el("label", { className: "check" }, el("input", { type: "checkbox", value: item.key }), ` ${item.label}`));
    }
    const age = el("fieldset", {}, el("legend", { textContent: this.s.age }));
    for (const band of ask.age_bands) {
      age.append(el("label", { className: "check" }, el("input", { type: "radio", name: `age-${id}`, value: band.key }), ` ${band.label}`));
    }
    const under16 = el("p", { className: "note", textContent: ask.under_16_note, hidden: true });
    const reasonId = `reason-${id}`;
    const reason = el("div", { hidden: true },
      el("label", { htmlFor: reasonId, textContent: this.s.reason }),
      el("textarea", { id: reasonId, rows: 2, maxLength: 1000 }));
    const contactId = `contact-${id}`;
    // Contact details go with a yes only (the server refuses them with a no or a change).
    const contact = el("div", { hidden: true },
      el("label", { htmlFor: contactId, textContent: this.s.contact }),
      el("textarea", { id: contactId, rows: 2, maxLength: 500 }));
    form.append(answers, except, age, under16, reason, contact,
      el("p", { className: "consent-error error", role: "alert" }),
      el("button", { type: "submit", className: "primary", textContent: this.s.send }));
    form.addEventListener("change", () => {
      const answer = form.querySelector(`input[name="answer-${id}"]:checked`)?.value;
      except.hidden = answer !== "agree_except";
      reason.hidden = answer !== "change" && answer !== "no";
      contact.hidden = !(ask.asks_contact && AGREEING.includes(answer));
      under16.hidden = form.querySelector(`input[name="age-${id}"]:checked`)?.value !== "under_16";
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const answer = form.querySelector(`input[name="answer-${id}"]:checked`)?.value;
      const frame = {
        type: "consent",
        handover_id: id,
        service: h.service.id,
        answer,
        text_version: ask.text_version,
        exceptions: answer === "agree_except" ? [...except.querySelectorAll("input:checked")].map((i) => i.value) : [],
        reason: reason.hidden ? "" : reason.querySelector("textarea").value,
        contact: contact.hidden ? "" : contact.querySelector("textarea").value,
      };
      const band = form.querySelector(`input[name="age-${id}"]:checked`)?.value;
      if (band) frame.age_band = band;
      form.querySelector(".consent-error").textContent = "";
      this.send(frame);
    });
    return form;
  }
}
