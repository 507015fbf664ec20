// A partner's open handover page: the shared summary must not stay on screen once the youth
// has withdrawn their consent (or it ran out). The page asks the server now and then (no
// content is fetched, nothing is audited) and, when the handover is no longer the partner's
// to read, replaces everything on it with the server's message. Texts come from the page.
const main = document.querySelector("main[data-status-url]");
const EVERY_MS = 5000;
let timer = null;

function close(message) {
  clearInterval(timer);
  const back = document.createElement("a");
  back.href = main.dataset.inboxUrl;
  back.textContent = main.dataset.inboxText;
  const notice = document.createElement("p");
  notice.className = "error withdrawn-notice";
  notice.setAttribute("role", "alert");
  notice.textContent = message || main.dataset.goneText;
  const panel = document.createElement("section");
  panel.className = "panel";
  panel.append(notice, document.createElement("p"));
  panel.lastChild.append(back);
  main.replaceChildren(panel);
}

async function check() {
  let response;
  try {
    response = await fetch(main.dataset.statusUrl, { credentials: "same-origin", cache: "no-store" });
  } catch {
    return; // offline for a moment: ask again next time
  }
  if (response.redirected || !(response.headers.get("content-type") || "").includes("json")) {
    location.reload(); // logged out: the login page takes over, the summary goes with it
    return;
  }
  const status = await response.json().catch(() => null);
  if (status && status.visible === false) close(status.message);
}

if (main) {
  timer = setInterval(check, EVERY_MS);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") check();
  });
}
