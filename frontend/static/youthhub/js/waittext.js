// A waiting-time estimate ({eta_seconds, eta_range}) in plain words, for the youth page and
// the kiosk. `strings` holds eta_now, eta_range ("{low}", "{high}"), eta_long, eta_unknown.
export function etaText(wait, strings) {
  if (!wait || wait.eta_seconds == null) return strings.eta_unknown;
  if (wait.eta_seconds <= 120) return strings.eta_now;
  const [low, high] = wait.eta_range;
  if (high > 3600) return strings.eta_long;
  const lowMin = Math.max(1, Math.round(low / 60));
  const highMin = Math.max(lowMin + 1, Math.ceil(high / 60));
  return strings.eta_range.replace("{low}", lowMin).replace("{high}", highMin);
}
