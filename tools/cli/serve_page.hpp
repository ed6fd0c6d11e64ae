#pragma once
// The page `tr0n serve` answers at `/`, with its style (`/app.css`) and
// script (`/app.js`) served beside it: the page's Content-Security-Policy
// allows nothing inline and nothing from elsewhere. A prompt, the number of samples, steps, start and seed;
// a grid of the images with their energies; the time taken; and a plot of
// mean energy against step for the chosen start and the other start on the
// same prompt (the paper's argument in one picture).
namespace tr0n_cli {

inline constexpr const char* serve_page = R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tr0n: prompt to images</title>
<link rel="stylesheet" href="/app.css">
<script src="/app.js" defer></script>
</head>
<body>
<main>
  <h1>tr0n: prompt to images</h1>
  <p class="lead">TR0N (Liu et al., ICML 2023): a translator network proposes latents for the prompt,
  then a few Langevin steps refine them. The plot compares it with starting from the prior.</p>
  <form id="form">
    <label>Prompt<input id="prompt" value="a photo of a sneaker" maxlength="500" autocomplete="off"></label>
    <label>Samples<input id="n" type="number" min="1" value="16"></label>
    <label>Steps<input id="steps" type="number" min="0" value="10"></label>
    <label>Start<select id="init">
      <option value="tr0n">TR0N</option><option value="translator">translator only</option>
      <option value="prior">prior</option></select></label>
    <label>Seed<input id="seed" type="number" min="0" value="0"></label>
    <button id="go" type="submit">Generate</button>
  </form>
  <div id="status">Type a prompt and press Generate.</div>
  <div class="panels">
    <div id="grid"><div class="empty">Images appear here.</div></div>
    <div class="card"><h2>Mean energy against step</h2>
      <canvas id="plot" width="712" height="440" data-series="0"></canvas>
      <div id="legend"></div></div>
  </div>
</main>
</body>
</html>
)html";

inline constexpr const char* serve_style = R"css(
  :root { --fg: #1d2330; --muted: #6b7385; --accent: #2f6fde; --other: #e07b26; --bad: #c0392b; }
  body { font: 15px/1.45 system-ui, sans-serif; color: var(--fg); margin: 0; background: #f6f7fa; }
  main { max-width: 980px; margin: 0 auto; padding: 24px; }
  h1 { font-size: 22px; margin: 0 0 4px; }
  p.lead { margin: 0 0 18px; color: var(--muted); }
  form { display: grid; grid-template-columns: 1fr auto auto auto auto auto; gap: 10px; align-items: end;
         background: #fff; padding: 14px; border-radius: 10px; box-shadow: 0 1px 3px #0002; }
  label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); gap: 3px; }
  input, select, button { font: inherit; padding: 7px 9px; border: 1px solid #c9cfdb; border-radius: 7px; }
  input[type=number] { width: 74px; }
  button { background: var(--accent); color: #fff; border: none; padding: 8px 18px; cursor: pointer; }
  button:disabled { background: #9db6e6; cursor: wait; }
  #status { margin: 14px 0; min-height: 22px; color: var(--muted); }
  #status.error { color: var(--bad); background: #fdecea; padding: 8px 12px; border-radius: 7px; }
  .panels { display: grid; grid-template-columns: 1fr 380px; gap: 18px; align-items: start; }
  #grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(96px, 1fr)); gap: 10px; }
  figure { margin: 0; background: #fff; border-radius: 8px; padding: 6px; box-shadow: 0 1px 2px #0002; text-align: center; }
  figure img { width: 100%; image-rendering: pixelated; display: block; border-radius: 4px; }
  figcaption { font-size: 11px; color: var(--muted); margin-top: 3px; }
  figure.failed figcaption { color: var(--bad); }
  .card { background: #fff; border-radius: 10px; padding: 12px; box-shadow: 0 1px 3px #0002; }
  .card h2 { font-size: 14px; margin: 0 0 6px; }
  canvas { width: 356px; height: 220px; }
  .empty { color: var(--muted); padding: 30px; text-align: center; border: 2px dashed #d5dae4; border-radius: 10px; }
#legend { font-size: 12px; color: var(--muted); }
)css";

inline constexpr const char* serve_script = R"js(const $ = (id) => document.getElementById(id);
let info = { translator: true, text: true, max_n: 64, max_steps: 200 };
const names = { tr0n: "TR0N", translator: "translator only", prior: "prior start" };

function status(text, error) { const s = $("status"); s.textContent = text; s.className = error ? "error" : ""; }

async function post(body) {
  const r = await fetch("/api/sample", { method: "POST", headers: { "Content-Type": "application/json" },
                                          body: JSON.stringify(body) });
  let j = {};
  try { j = await r.json(); } catch (e) { j = { error: "the server answered " + r.status }; }
  if (!r.ok) throw new Error(j.error || ("the server answered " + r.status));
  return j;
}

function drawPlot(series) {
  const c = $("plot"), g = c.getContext("2d"), W = c.width, H = c.height, pad = 60;
  g.clearRect(0, 0, W, H);
  const all = series.flatMap((s) => s.trace.filter((v) => v !== null));
  if (!all.length) { c.dataset.series = "0"; return; }
  let lo = Math.min(...all), hi = Math.max(...all);
  if (hi - lo < 1e-9) { hi += 0.5; lo -= 0.5; }
  const T = Math.max(1, ...series.map((s) => s.trace.length - 1));
  const x = (t) => pad + (W - pad - 20) * t / T, y = (v) => 20 + (H - pad - 20) * (hi - v) / (hi - lo);
  g.strokeStyle = "#c9cfdb"; g.lineWidth = 2; g.beginPath();
  g.moveTo(pad, 20); g.lineTo(pad, H - pad); g.lineTo(W - 20, H - pad); g.stroke();
  g.fillStyle = "#6b7385"; g.font = "22px system-ui";
  g.fillText(hi.toFixed(2), 4, 34); g.fillText(lo.toFixed(2), 4, H - pad);
  g.fillText("0", pad - 6, H - pad + 28); g.fillText(String(T), W - 50, H - pad + 28);
  g.fillText("step", W / 2 - 20, H - 12);
  for (const s of series) {
    g.strokeStyle = s.color; g.fillStyle = s.color; g.lineWidth = 4; g.beginPath();
    s.trace.forEach((v, t) => { if (v === null) return; t ? g.lineTo(x(t), y(v)) : g.moveTo(x(t), y(v)); });
    g.stroke();
    s.trace.forEach((v, t) => { if (v !== null) { g.beginPath(); g.arc(x(t), y(v), 5, 0, 7); g.fill(); } });
  }
  c.dataset.series = String(series.length);
  const legend = $("legend");
  legend.replaceChildren();
  const ends = (v) => (v === null ? "-" : v.toFixed(3));
  series.forEach((s, i) => {
    const mark = document.createElement("span");
    mark.textContent = "\u25a0";
    mark.style.color = s.color;  // set through the DOM: the page's policy allows no inline style
    if (i) legend.append(document.createElement("br"));
    legend.append(mark, ` ${s.label}: ${ends(s.trace[0])} \u2192 ${ends(s.trace[s.trace.length - 1])}`);
  });
}

function showImages(j) {
  const grid = $("grid");
  grid.innerHTML = "";
  j.images.forEach((src, i) => {
    const f = document.createElement("figure");
    if (!j.ok[i]) f.className = "failed";
    const img = document.createElement("img");
    img.src = src; img.alt = "sample " + (i + 1);
    const cap = document.createElement("figcaption");
    cap.textContent = j.ok[i] && j.energy[i] !== null ? "E " + j.energy[i].toFixed(3) : "failed";
    f.append(img, cap); grid.append(f);
  });
}

$("form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const body = { prompt: $("prompt").value, n: Number($("n").value), steps: Number($("steps").value),
                 init: $("init").value, seed: Number($("seed").value) };
  if (!body.prompt.trim()) { status("Type a prompt first.", true); return; }
  $("go").disabled = true;
  status("Sampling…");
  const t0 = performance.now();
  try {
    const j = await post(body);
    showImages(j);
    const round = (performance.now() - t0) / 1000;
    status(`${j.images.length} images for "${j.prompt}" in ${j.seconds.toFixed(3)} s on the server ` +
           `(${round.toFixed(3)} s round trip), ${names[j.init]}, ${j.steps} steps.`);
    const series = [{ label: names[j.init], trace: j.trace, color: "#2f6fde" }];
    const other = body.init === "prior" ? (info.translator ? "tr0n" : null) : "prior";
    if (other) {
      const k = await post({ ...body, init: other, steps: Math.max(body.steps, 1) });
      series.push({ label: names[other], trace: k.trace, color: "#e07b26" });
    }
    drawPlot(series);
  } catch (e) {
    status(e.message, true);
  } finally {
    $("go").disabled = false;
  }
});

fetch("/api/info").then((r) => r.json()).then((j) => {
  info = j;
  $("n").max = j.max_n; $("steps").max = j.max_steps;
  if (!j.translator) { $("init").value = "prior"; for (const o of $("init").options) o.disabled = o.value !== "prior"; }
  if (!j.text) { $("prompt").disabled = true; status("This server has no text encoder: use the JSON API with conditions.", true); }
}).catch(() => status("Cannot reach the server.", true));
)js";

}  // namespace tr0n_cli
