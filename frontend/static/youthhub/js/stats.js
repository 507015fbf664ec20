// The supervisors' live panel: polls /supervisor/stats/now every 15 s.
const $ = (id) => document.getElementById(id);
const strings = JSON.parse($("strings").textContent);
const fill = (template, values) => template.replace(/\{(\w+)\}/g, (all, key) => (key in values ? values[key] : all));

function minutes(seconds) {
  if (seconds === null || seconds === undefined) return strings.unknown;
  return fill(strings.minutes, { n: Math.round(seconds / 60) });
}

async function refresh() {
  try {
    const response = await fetch($("now").dataset.url, { headers: { Accept: "application/json" } });
    if (!response.ok) return;
    const now = await response.json();
    $("now-queued").textContent = now.queued;
    $("now-longest").textContent = now.queued ? minutes(now.longest_wait_seconds) : "–";
    $("now-staff").textContent = now.staff_on;
    $("now-places").textContent = `${now.busy} / ${now.places}`;
    $("now-eta").textContent = now.staff_on ? minutes(now.eta_seconds) : strings.nobody_on;
    $("now-alert").hidden = !now.alert;
    $("now-alert").textContent = now.alert ? fill(strings.alert, { n: now.alert_minutes }) : "";
  } catch {
    /* offline: keep the last figures */
  }
}

refresh();
setInterval(refresh, 15000);
