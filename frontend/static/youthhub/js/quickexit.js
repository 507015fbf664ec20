// Quick exit: one tap on "Exit this page" (or Esc twice) blanks the page, ends the chat, deletes
// what this site keeps in the browser (localStorage, sessionStorage, Cache Storage, the service
// worker, the cookies scripts can see) and replaces the page with a neutral site, so Back does
// not return to it. Loaded as its own module before youth.js: it works even if the chat did not
// start. Without JavaScript the link still leaves (it is a plain link to the same address).
//
// What it cannot clear: entries of earlier visits in the browser history and the phone's app
// switcher (docs/privacy.md).

const button = document.getElementById("quick-exit");
const EXIT_URL = button ? button.dataset.url : "https://www.yr.no/";
const ESCAPES_WITHIN_MS = 1000;
const CLEANUP_WAIT_MS = 400;
const hooks = [];
let leaving = false;
let lastEscape = 0;

// youth.js registers "send {type: end} on the open socket and stop reconnecting" here.
export function onQuickExit(hook) {
  hooks.push(hook);
}

function clearCookies() {
  const paths = ["/", location.pathname];
  const secure = location.protocol === "https:" ? "; Secure" : "";
  for (const part of document.cookie.split(";")) {
    const name = part.split("=")[0].trim();
    if (!name) continue;
    for (const path of paths) document.cookie = `${name}=; Max-Age=0; path=${path}; SameSite=Lax${secure}`;
  }
}

async function clearCachesAndWorker() {
  const jobs = [];
  if (window.caches) jobs.push(caches.keys().then((keys) => Promise.all(keys.map((key) => caches.delete(key)))));
  if (navigator.serviceWorker) {
    jobs.push(
      navigator.serviceWorker.getRegistrations().then((all) => Promise.all(all.map((r) => r.unregister()))),
    );
  }
  // Best effort, and never more than a moment: leaving fast matters more.
  await Promise.race([Promise.allSettled(jobs), new Promise((resolve) => setTimeout(resolve, CLEANUP_WAIT_MS))]);
}

export async function quickExit() {
  if (leaving) return;
  leaving = true;
  // Nothing of the chat stays on screen, even for the moment the clean-up takes.
  document.body.replaceChildren();
  document.title = "…";
  for (const hook of hooks) {
    try {
      hook();
    } catch {
      /* leave anyway */
    }
  }
  for (const storage of [() => localStorage, () => sessionStorage]) {
    try {
      storage().clear();
    } catch {
      /* storage blocked: nothing stored there either */
    }
  }
  clearCookies();
  try {
    await clearCachesAndWorker();
  } finally {
    // The hooks ran before the clean-up; clear again whatever they wrote meanwhile.
    try {
      localStorage.clear();
      sessionStorage.clear();
    } catch {
      /* as above */
    }
    location.replace(EXIT_URL);
  }
}

if (button) {
  button.addEventListener("click", (event) => {
    event.preventDefault();
    quickExit();
  });
}

document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  const now = Date.now();
  if (now - lastEscape <= ESCAPES_WITHIN_MS) quickExit();
  lastEscape = now;
});
