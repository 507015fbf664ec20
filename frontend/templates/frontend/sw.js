// youthhub's service worker (served as /sw.js by frontend.views.service_worker; version {{ version }}).
// It exists so the youth app can start without a network. It keeps the app shell only: the
// youth pages and their static files, none of which holds conversation content. It never
// touches /api/ or the WebSocket (/ws/), staff pages, or anything but a GET of a shell file or
// a youth page; those go to the network exactly as without a worker. Quick exit deletes its
// cache and unregisters it.
const CACHE = "yh-shell-{{ version }}";
const SHELL = {{ shell_json|safe }};
// Youth pages: the chat ("/") and an arena's drop-in page on the phone ("/dropin/<slug>/").
// Not the kiosk: it is a shared tablet that needs the network anyway.
const YOUTH_PAGE = /^\/(dropin\/[-\w]+\/)?$/;

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(SHELL))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((key) => key !== CACHE).map((key) => caches.delete(key))))
      .then(() => self.clients.claim()),
  );
});

function shellKey(request) {
  if (request.method !== "GET") return null;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || url.search) return null;
  if (url.pathname.startsWith("/api/") || url.pathname.startsWith("/ws/")) return null;
  if (request.mode === "navigate") return YOUTH_PAGE.test(url.pathname) ? url.pathname : null;
  return SHELL.includes(url.pathname) ? url.pathname : null;
}

// Network first, so an online youth always gets the current page and scripts; the cached copy
// is only for when the network is gone.
async function networkFirst(request, key) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok && response.type === "basic" && !response.redirected) {
      await cache.put(key, response.clone());
    }
    return response;
  } catch (error) {
    const cached = await cache.match(key, { ignoreVary: true });
    if (cached) return cached;
    throw error;
  }
}

self.addEventListener("fetch", (event) => {
  const key = shellKey(event.request);
  if (key) event.respondWith(networkFirst(event.request, key));
});
