// The arena's tablet: choose whom to see, take a ticket, scan it onto your phone. Keeps no
// session: every ticket is a new anonymous identity handed over by QR code.
import { etaText } from "./waittext.js";

const strings = JSON.parse(document.getElementById("strings").textContent);
const $ = (id) => document.getElementById(id);
const site = $("kiosk").dataset.site;
const RESET_AFTER = 60000;
let resetTimer = null;

function button(label, target) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "choose";
  b.dataset.target = JSON.stringify(target);
  b.textContent = label;
  return b;
}

async function refresh() {
  try {
    const response = await fetch(`/api/queue/overview?site=${encodeURIComponent(site)}`);
    if (!response.ok) return;
    const data = await response.json();
    $("kiosk-roles").replaceChildren(...data.roles.map((r) => button(strings.roles[r.role] || r.role, { role: r.role })));
    $("kiosk-people").replaceChildren(
      ...data.staff.map((p) => {
        const li = document.createElement("li");
        li.className = "card";
        li.append(button(`${p.display_name} – ${p.role_label}`, { staff: p.id }));
        return li;
      }),
    );
  } catch {
    /* keep the last list */
  }
}

// A shared tablet: the next person starts in the default language again.
function resetLanguage() {
  if (!document.cookie.split(";").some((c) => c.trim().startsWith("django_language="))) return false;
  const secure = location.protocol === "https:" ? "; Secure" : "";
  document.cookie = `django_language=; Max-Age=0; path=/; SameSite=Lax${secure}`;
  location.reload();
  return true;
}

// Back to the first screen with nothing of the last person on it ("Done", "Start over", or a
// minute after a ticket was taken).
function reset() {
  clearTimeout(resetTimer);
  if (resetLanguage()) return;
  $("taken").hidden = true;
  $("choose").hidden = false;
  for (const id of ["kiosk-ticket", "kiosk-wait", "kiosk-error"]) $(id).textContent = "";
  $("kiosk-qr").replaceChildren();
  delete $("kiosk-qr").dataset.followUrl;
  window.scrollTo(0, 0);
  refresh();
}

async function take(target) {
  $("kiosk-error").textContent = "";
  try {
    const response = await fetch(`/api/queue/dropin/${encodeURIComponent(site)}/ticket`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ target }),
    });
    const data = await response.json();
    if (!response.ok) throw new Error(data.error?.message || strings.error);
    $("kiosk-ticket").textContent = data.ticket;
    $("kiosk-wait").textContent = `${strings.position.replace("{position}", data.position)} ${etaText(data, strings)}`;
    // segno's SVG, made by the server from the follow link (no user content in it).
    $("kiosk-qr").innerHTML = data.qr_svg;
    $("kiosk-qr").dataset.followUrl = data.follow_url;
    $("choose").hidden = true;
    $("taken").hidden = false;
    resetTimer = setTimeout(reset, RESET_AFTER);
  } catch (error) {
    $("kiosk-error").textContent = error.message || strings.error;
  }
}

$("choose").addEventListener("click", (event) => {
  const b = event.target.closest("button.choose");
  if (b) take(JSON.parse(b.dataset.target));
});
$("kiosk-done").addEventListener("click", reset);
$("kiosk-restart").addEventListener("click", reset);
refresh();
setInterval(() => $("taken").hidden && refresh(), 20000);
