/**
 * The dashboard page: plain HTML, CSS and a little JavaScript, served by the monitor as they
 * are (no build step, nothing loaded from elsewhere, so it works offline and under a strict
 * Content-Security-Policy). The page arrives with the state in it; the script then reads
 * `dashboard/events` (server-sent events, see `dashboard.ts`, with the page's view: a route
 * filter, the application whose instances it lists) and redraws on every state. Names and
 * versions come from applications and are only ever set as text, never as HTML.
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
  <span id="status" class="status on">live</span>
</header>
<main>
  <section id="health" class="health">
    <div class="pills">
      <span id="h-kafka" class="pill">Kafka</span>
      <span id="h-monitors" class="pill">monitors</span>
      <span id="h-apps" class="pill">applications</span>
      <span id="h-departed" class="pill">departed</span>
    </div>
    <ul id="problems"></ul>
  </section>
  <section class="figures">
    <div><b id="n-apps">-</b> instances</div>
    <div><b id="n-monitors">-</b> monitors</div>
    <div><b id="n-rate">-</b> events/s</div>
    <div><b id="n-errors">-</b> errors/s</div>
    <div id="mesh-spark" class="spark wide" title="events/s, last 5 minutes"></div>
  </section>
  <section>
    <h2>Routes <span id="routes-count" class="muted"></span></h2>
    <input id="route-filter" type="search" placeholder="filter routes" autocomplete="off">
    <div class="scroll"><table id="routes">
      <thead><tr><th>route</th><th>served by</th><th class="num">instances</th>
      <th class="num">req/s</th><th class="num">errors/s</th><th class="num">p50 ms</th>
      <th class="num">p99 ms</th><th>last 5 min</th></tr></thead>
      <tbody></tbody>
    </table></div>
  </section>
  <section>
    <h2>Applications</h2>
    <div class="scroll"><table id="groups">
      <thead><tr><th>name</th><th>versions</th><th class="num">instances</th><th class="num">down</th>
      <th class="num">events/s</th><th class="num">errors/s</th><th>last 5 min</th></tr></thead>
      <tbody></tbody>
    </table></div>
    <h2>Instances <span id="apps-count" class="muted"></span></h2>
    <div class="scroll"><table id="apps">
      <thead><tr><th>name</th><th>version</th><th>origin</th><th>lease</th><th>group</th>
      <th>uptime</th><th>health</th><th class="num">events/s</th><th class="num">errors/s</th>
      <th>last 5 min</th><th>endpoints</th><th>routes</th></tr></thead>
      <tbody></tbody>
    </table></div>
  </section>
  <section id="departed-section">
    <h2>Departed <span class="muted">(kept ten minutes)</span></h2>
    <table id="departed">
      <thead><tr><th>name</th><th>version</th><th>origin</th><th>lease</th><th>left</th><th>why</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
  <section class="two">
    <div>
      <h2>Joins and leaves</h2>
      <ol id="events"></ol>
    </div>
    <div>
      <h2>Monitors</h2>
      <table id="monitors">
        <thead><tr><th>origin</th><th>version</th><th>state</th><th>uptime</th><th>last alive</th></tr></thead>
        <tbody></tbody>
      </table>
    </div>
  </section>
</main>
<footer>Live from <a href="info">/info</a>, <a href="metrics">/metrics</a> and
<a href="dashboard/state">/dashboard/state</a> of this monitor</footer>
<script type="application/json" id="initial">__STATE__</script>
</body>
</html>
`;

const CSS =
  `:root { color-scheme: light dark; --line: #8884; --muted: #888; --ok: #2a8a3e; --bad: #c0392b; --warn: #c77c02; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; }
header { display: flex; gap: 1em; align-items: baseline; padding: .6em 1.2em; border-bottom: 1px solid var(--line); }
h1 { font-size: 1.3em; margin: 0; }
h2 { font-size: 1.05em; margin: 1.2em 0 .4em; }
main { padding: 0 1.2em 1em; }
#monitor { color: var(--muted); }
.status { margin-left: auto; padding: .1em .6em; border-radius: 1em; color: #fff; background: var(--muted); }
.status.on { background: var(--ok); }
.health { margin-top: .8em; }
.pills { display: flex; flex-wrap: wrap; gap: .6em; }
.pill { padding: .2em .8em; border-radius: 1em; color: #fff; background: var(--ok); font-weight: 600; }
.pill.bad { background: var(--bad); }
.pill.warn { background: var(--warn); }
.pill.idle { background: var(--muted); }
#problems { margin: .5em 0 0; padding-left: 1.2em; color: var(--bad); font-weight: 600; }
.figures { display: flex; gap: 2.5em; margin-top: 1em; align-items: center; flex-wrap: wrap; }
.figures b { font-size: 1.6em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .25em .6em; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; color: var(--muted); }
.num { text-align: right; font-variant-numeric: tabular-nums; }
.mono { font-family: ui-monospace, monospace; font-size: .88em; overflow-wrap: anywhere; }
.scroll { overflow-x: auto; max-height: 32em; overflow-y: auto; }
td.nowrap { white-space: nowrap; }
td.routes { min-width: 16em; }
td.routes span, td.providers span { display: inline-block; margin: 0 .3em .25em 0; padding: 0 .4em; border-radius: .3em; background: #8882; font-family: ui-monospace, monospace; font-size: .88em; }
td a { margin-right: .5em; }
.errors { color: var(--bad); font-weight: 600; }
.down { color: var(--bad); font-weight: 700; }
.up { color: var(--ok); }
.muted { color: var(--muted); }
.two { display: grid; grid-template-columns: 1fr 1fr; gap: 2em; }
ol { list-style: none; margin: 0; padding: 0; max-height: 22em; overflow-y: auto; }
li { padding: .2em 0; border-bottom: 1px solid var(--line); }
.join { color: var(--ok); font-weight: 600; }
.leave { color: var(--bad); font-weight: 600; }
tr.gone td { color: var(--muted); }
tr.gone { opacity: .75; }
tr.pick { cursor: pointer; }
tr.picked { background: #8882; }
#route-filter { margin: 0 0 .5em; padding: .3em .5em; width: 20em; max-width: 100%; }
.spark svg { display: block; }
.spark polyline { fill: none; stroke: var(--ok); stroke-width: 1.5; }
.spark.wide svg { width: 240px; height: 32px; }
footer { padding: 1em 1.2em; color: var(--muted); }
`;

const JS = `"use strict";
(function () {
  var state = null;
  var skew = 0; // server clock minus this one
  var view = { routes: "", app: "" };
  var SVG = "http://www.w3.org/2000/svg";
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
  function fill(id, rows) {
    var body = $(id).tBodies[0];
    body.replaceChildren.apply(body, rows);
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
  // At most 12 chips in a cell, the rest counted (the cell's title lists them all).
  function chips(list, cls, none) {
    if (list === null || list.length === 0) return el("td", list === null ? "(not reported)" : none, cls + " muted");
    var td = el("td", null, cls);
    list.slice(0, 12).forEach(function (r) { td.appendChild(el("span", r)); });
    if (list.length > 12) td.appendChild(el("span", "+" + (list.length - 12) + " more", "muted"));
    td.title = list.join(" ");
    return td;
  }
  function short(origin) {
    var td = el("td", origin.length > 16 ? origin.slice(0, 8) + "…" + origin.slice(-6) : origin, "mono nowrap");
    td.title = origin;
    return td;
  }
  function figure(n, bad) {
    if (n === null || n === undefined) return el("td", "-", "num muted");
    return el("td", n, bad && n > 0 ? "num errors" : "num");
  }
  // A sparkline of the values (no axes: its title says the range).
  function spark(values, w, h) {
    var holder = el("span", null, "spark");
    if (!values || values.length < 2) return holder;
    var max = Math.max.apply(null, values.concat([0.1]));
    var svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("width", w); svg.setAttribute("height", h);
    svg.setAttribute("viewBox", "0 0 " + w + " " + h);
    var line = document.createElementNS(SVG, "polyline");
    line.setAttribute("points", values.map(function (v, i) {
      return (i * (w - 2) / (values.length - 1) + 1).toFixed(1) + "," +
        (h - 1 - (v / max) * (h - 2)).toFixed(1);
    }).join(" "));
    svg.appendChild(line);
    holder.appendChild(svg);
    holder.title = "max " + Math.round(max * 10) / 10 + "/s over the last 5 minutes";
    return holder;
  }
  function sparkCell(values) {
    var td = el("td");
    td.appendChild(spark(values, 120, 20));
    return td;
  }
  function pill(id, text, level) {
    $(id).textContent = text;
    $(id).className = "pill" + (level ? " " + level : "");
  }
  function links(a) {
    var td = el("td", null, "nowrap");
    if (!a.http) { td.textContent = "-"; td.className = "muted"; return td; }
    ["info", "health", "metrics"].forEach(function (p) {
      var link = el("a", p);
      link.href = a.http + "/" + p;
      link.rel = "noreferrer";
      td.appendChild(link);
    });
    return td;
  }
  function render() {
    var s = state;
    var h = s.health;
    $("monitor").textContent = s.monitor.name + " " + s.monitor.version + " - " + s.monitor.origin;
    pill("h-kafka", h.kafka.up ? "Kafka reachable" : "Kafka UNREACHABLE since " + time(h.kafka.since),
      h.kafka.up ? "" : "bad");
    $("h-kafka").title = h.kafka.brokers;
    pill("h-monitors", h.monitors + " monitor(s)" + (h.silentMonitors ? ", " + h.silentMonitors + " silent" : ""),
      h.silentMonitors ? "bad" : h.monitors < 2 ? "warn" : "");
    pill("h-apps", h.apps + " instance(s)" + (h.appsDown ? ", " + h.appsDown + " DOWN" : ""),
      h.appsDown ? "bad" : "");
    pill("h-departed", h.departed + " departed", h.departed ? "idle" : "idle");
    $("problems").replaceChildren.apply($("problems"), h.problems.map(function (p) { return el("li", p); }));
    $("n-apps").textContent = s.appsTotal;
    $("n-monitors").textContent = s.monitors.length;
    $("n-rate").textContent = s.mesh.rate;
    $("n-errors").textContent = s.mesh.errorRate;
    $("mesh-spark").replaceChildren(spark(s.mesh.history, 240, 32));
    $("routes-count").textContent = "(" + s.routes.length + " of " + s.routesTotal + ", busiest first)";
    fill("routes", s.routes.map(function (r) {
      var tr = row([
        el("td", r.route, "mono"),
        chips(r.providers.map(function (p) { return p.name + " x" + p.instances; }), "providers", "(no provider)"),
        el("td", r.instances, "num"), figure(r.rate), figure(r.errorRate, true),
        figure(r.p50), figure(r.p99), sparkCell(r.history),
      ]);
      tr.dataset.route = r.route;
      return tr;
    }));
    var many = s.appsTotal > s.apps.length || view.app;
    fill("groups", s.groups.map(function (g) {
      var tr = row([
        el("td", g.name, "nowrap"), el("td", g.versions.join(", ")), el("td", g.instances, "num"),
        el("td", g.down, g.down ? "num down" : "num muted"), figure(g.rate), figure(g.errorRate, true),
        sparkCell(g.history),
      ]);
      tr.dataset.name = g.name;
      if (many) {
        tr.className = "pick" + (view.app === g.name ? " picked" : "");
        tr.title = "show its instances";
        tr.onclick = function () { view.app = view.app === g.name ? "" : g.name; connect(); };
      }
      return tr;
    }));
    $("apps-count").textContent = s.apps.length === s.appsTotal ? "" :
      "(" + s.apps.length + " of " + s.appsTotal + (view.app ? ": " + view.app : ": pick an application above") + ")";
    fill("apps", s.apps.map(function (a) {
      var tr = row([
        el("td", a.name, "nowrap"), el("td", a.version), short(a.origin),
        el("td", a.lease === null ? "(claiming)" : a.lease, "mono nowrap"), el("td", a.group),
        el("td", uptime(a.started), "uptime nowrap"),
        el("td", a.health === null ? "-" : a.health, a.health === "DOWN" ? "down" : a.health ? "up" : "muted"),
        figure(a.rate), figure(a.errorRate, true), sparkCell(a.history), links(a),
        chips(a.routes, "routes", "(none)"),
      ]);
      tr.dataset.origin = a.origin;
      tr.dataset.started = a.started;
      tr.title = "connected through monitor " + a.monitor + (a.events === null ? "" :
        "; " + a.events + " events, " + a.errors + " errors since it started");
      return tr;
    }));
    $("departed-section").hidden = s.departed.length === 0;
    fill("departed", s.departed.map(function (d) {
      var why = el("td", d.plain);
      why.title = d.reason;
      var tr = row([
        el("td", d.name, "nowrap"), el("td", d.version), short(d.origin),
        el("td", d.lease || "-", "mono"), el("td", time(d.at), "nowrap"), why,
      ]);
      tr.className = "gone";
      tr.dataset.origin = d.origin;
      return tr;
    }));
    fill("monitors", s.monitors.map(function (m) {
      var tr = row([
        el("td", m.origin + (m.me ? " (this one)" : ""), "mono"), el("td", m.version),
        el("td", m.state, m.state === "live" ? "up" : "down"),
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
  function take(data) {
    state = data;
    skew = Date.parse(state.now) - Date.now();
    render();
  }
  // Uptimes advance between pushes.
  setInterval(function () {
    document.querySelectorAll("tr[data-started]").forEach(function (tr) {
      var cell = tr.querySelector(".uptime");
      if (cell) cell.textContent = uptime(tr.dataset.started);
    });
  }, 1000);
  var source = null;
  function connect() {
    if (source) source.close();
    var q = [];
    if (view.routes) q.push("routes=" + encodeURIComponent(view.routes));
    if (view.app) q.push("app=" + encodeURIComponent(view.app));
    source = new EventSource("dashboard/events" + (q.length ? "?" + q.join("&") : ""));
    source.onmessage = function (m) {
      take(JSON.parse(m.data));
      $("status").textContent = "live";
      $("status").className = "status on";
    };
    source.onerror = function () {
      $("status").textContent = "reconnecting";
      $("status").className = "status off";
    };
  }
  var typing = 0;
  $("route-filter").addEventListener("input", function () {
    clearTimeout(typing);
    typing = setTimeout(function () { view.routes = $("route-filter").value.trim(); connect(); }, 300);
  });
  // The first paint carries the state the page was served with; the stream follows it.
  try { take(JSON.parse($("initial").textContent)); } catch (e) { /* no initial state */ }
  connect();
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

/** Whether `path` is one of the dashboard's page, style sheet or script. */
export function isDashboardAsset(path: string): boolean {
  return path in ASSETS;
}

/**
 * The dashboard's page, style sheet or script for `path`, or undefined. The page carries
 * `state` (JSON in a data block, which the Content-Security-Policy lets the script read), so
 * that its first paint shows the mesh, not a "connecting" placeholder.
 */
export function dashboardAsset(path: string, state?: unknown): Response | undefined {
  const asset = ASSETS[path];
  if (asset === undefined) return undefined;
  let body = asset[0];
  if (path === "/") {
    // `<` escaped: nothing in the state can close the data block.
    const json = state === undefined ? "null" : JSON.stringify(state).replaceAll("<", "\\u003c");
    body = body.replace("__STATE__", () => json);
  }
  return new Response(body, { headers: { ...HEADERS, "content-type": asset[1] } });
}
