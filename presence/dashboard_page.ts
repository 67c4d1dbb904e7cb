/**
 * The dashboard page: plain HTML, CSS and a little JavaScript, served by the monitor as they
 * are (no build step, nothing loaded from elsewhere, so it works offline and under a strict
 * Content-Security-Policy). The script reads `dashboard/events` (server-sent events, see
 * `dashboard.ts`) and redraws on every state; names and versions come from applications and are
 * only ever set as text, never as HTML.
 *
 * @module
 */

const HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>minimesh dashboard</title>
<link rel="stylesheet" href="dashboard.css">
<script src="dashboard.js" defer></script>
</head>
<body>
<header>
  <h1>minimesh</h1>
  <span id="monitor"></span>
  <span id="status" class="status off">connecting</span>
</header>
<main>
  <section class="figures">
    <div><b id="n-apps">-</b> applications</div>
    <div><b id="n-monitors">-</b> monitors</div>
    <div><b id="n-rate">-</b> events/s</div>
    <div><b id="n-errors">-</b> errors/s</div>
  </section>
  <section>
    <h2>Applications</h2>
    <div class="scroll"><table id="apps">
      <thead><tr><th>name</th><th>version</th><th>origin</th><th>lease</th><th>group</th>
      <th>uptime</th><th class="num">events/s</th><th class="num">errors/s</th><th>routes</th></tr></thead>
      <tbody></tbody>
    </table></div>
  </section>
  <section class="two">
    <div>
      <h2>Joins and leaves</h2>
      <ol id="events"></ol>
    </div>
    <div>
      <h2>Monitors</h2>
      <table id="monitors">
        <thead><tr><th>origin</th><th>version</th><th>uptime</th><th>last alive</th></tr></thead>
        <tbody></tbody>
      </table>
    </div>
  </section>
</main>
<footer>Live from <a href="info">/info</a> and <a href="metrics">/metrics</a> of this monitor</footer>
</body>
</html>
`;

const CSS =
  `:root { color-scheme: light dark; --line: #8884; --muted: #888; --ok: #2a8a3e; --bad: #c0392b; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; }
header { display: flex; gap: 1em; align-items: baseline; padding: .6em 1.2em; border-bottom: 1px solid var(--line); }
h1 { font-size: 1.3em; margin: 0; }
h2 { font-size: 1.05em; margin: 1.2em 0 .4em; }
main { padding: 0 1.2em 1em; }
#monitor { color: var(--muted); }
.status { margin-left: auto; padding: .1em .6em; border-radius: 1em; color: #fff; background: var(--muted); }
.status.on { background: var(--ok); }
.figures { display: flex; gap: 2.5em; margin-top: 1em; }
.figures b { font-size: 1.6em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .25em .6em; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; color: var(--muted); }
.num { text-align: right; font-variant-numeric: tabular-nums; }
.mono { font-family: ui-monospace, monospace; font-size: .88em; overflow-wrap: anywhere; }
.scroll { overflow-x: auto; }
td.nowrap { white-space: nowrap; }
td.routes { min-width: 16em; }
td.routes span { display: inline-block; margin: 0 .3em .25em 0; padding: 0 .4em; border-radius: .3em; background: #8882; font-family: ui-monospace, monospace; font-size: .88em; }
.errors { color: var(--bad); font-weight: 600; }
.muted { color: var(--muted); }
.two { display: grid; grid-template-columns: 1fr 1fr; gap: 2em; }
ol { list-style: none; margin: 0; padding: 0; max-height: 22em; overflow-y: auto; }
li { padding: .2em 0; border-bottom: 1px solid var(--line); }
.join { color: var(--ok); font-weight: 600; }
.leave { color: var(--bad); font-weight: 600; }
tr.gone { opacity: .4; }
footer { padding: 1em 1.2em; color: var(--muted); }
`;

const JS = `"use strict";
(function () {
  var state = null;
  var skew = 0; // server clock minus this one
  function $(id) { return document.getElementById(id); }
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function row(cells) {
    var tr = el("tr");
    cells.forEach(function (c) { tr.appendChild(c); });
    return tr;
  }
  function duration(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    var d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
    s = s % 60;
    return d ? d + "d " + h + "h" : h ? h + "h " + m + "m" : m ? m + "m " + s + "s" : s + "s";
  }
  function uptime(iso) {
    var t = Date.parse(iso);
    return isNaN(t) ? "" : duration(Date.now() + skew - t);
  }
  function time(iso) {
    var d = new Date(iso);
    return isNaN(d) ? iso : d.toLocaleTimeString();
  }
  function routes(list) {
    if (list === null || list.length === 0) {
      return el("td", list === null ? "(not reported)" : "(none)", "routes muted");
    }
    var td = el("td", null, "routes");
    list.forEach(function (r) { td.appendChild(el("span", r)); });
    return td;
  }
  function figure(n) { return n === null ? el("td", "-", "num muted") : el("td", n, "num"); }
  function render() {
    var s = state;
    $("monitor").textContent = s.monitor.name + " " + s.monitor.version + " - " + s.monitor.origin;
    $("n-apps").textContent = s.apps.length;
    $("n-monitors").textContent = s.monitors.length;
    var rate = 0, errors = 0;
    s.apps.forEach(function (a) { rate += a.rate || 0; errors += a.errorRate || 0; });
    $("n-rate").textContent = Math.round(rate * 10) / 10;
    $("n-errors").textContent = Math.round(errors * 10) / 10;
    $("apps").tBodies[0].replaceChildren.apply($("apps").tBodies[0], s.apps.map(function (a) {
      var tr = row([
        el("td", a.name, "nowrap"), el("td", a.version), el("td", a.origin, "mono"),
        el("td", a.lease === null ? "(claiming)" : a.lease, "mono"), el("td", a.group),
        el("td", uptime(a.started), "uptime nowrap"), figure(a.rate),
        a.errorRate ? el("td", a.errorRate, "num errors") : figure(a.errorRate),
        routes(a.routes),
      ]);
      tr.dataset.origin = a.origin;
      tr.dataset.started = a.started;
      tr.title = "connected through monitor " + a.monitor + "; " + (a.events === null ? "" :
        a.events + " events, " + a.errors + " errors since it started");
      return tr;
    }));
    $("monitors").tBodies[0].replaceChildren.apply($("monitors").tBodies[0],
      s.monitors.map(function (m) {
        var tr = row([
          el("td", m.origin + (m.me ? " (this one)" : ""), "mono"), el("td", m.version),
          el("td", uptime(m.started), "uptime nowrap"), el("td", time(m.lastSeen), "nowrap"),
        ]);
        tr.dataset.started = m.started;
        return tr;
      }));
    $("events").replaceChildren.apply($("events"), s.events.slice().reverse().map(function (e) {
      var li = el("li");
      li.dataset.origin = e.origin;
      li.dataset.kind = e.kind;
      li.appendChild(el("span", time(e.at) + " "));
      li.appendChild(el("span", e.kind, e.kind));
      li.appendChild(el("span", " " + e.name + " " + e.version + " "));
      li.appendChild(el("span", e.origin, "mono"));
      li.appendChild(el("span", " " + e.detail, "muted"));
      return li;
    }));
  }
  // Uptimes advance between pushes.
  setInterval(function () {
    document.querySelectorAll("tr[data-started]").forEach(function (tr) {
      var cell = tr.querySelector(".uptime");
      if (cell) cell.textContent = uptime(tr.dataset.started);
    });
  }, 1000);
  var source = new EventSource("dashboard/events");
  source.onmessage = function (m) {
    state = JSON.parse(m.data);
    skew = Date.parse(state.now) - Date.now();
    render();
    $("status").textContent = "live";
    $("status").className = "status on";
  };
  source.onerror = function () {
    $("status").textContent = "reconnecting";
    $("status").className = "status off";
  };
})();
`;

// The page loads nothing but its own two files; its script only sets text.
const HEADERS = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
    "img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-cache",
};

const ASSETS: Record<string, [string, string]> = {
  "/": [HTML, "text/html; charset=utf-8"],
  "/dashboard.css": [CSS, "text/css; charset=utf-8"],
  "/dashboard.js": [JS, "text/javascript; charset=utf-8"],
};

/** The dashboard's page, style sheet or script for `path`, or undefined. */
export function dashboardAsset(path: string): Response | undefined {
  const asset = ASSETS[path];
  if (asset === undefined) return undefined;
  return new Response(asset[0], { headers: { ...HEADERS, "content-type": asset[1] } });
}
