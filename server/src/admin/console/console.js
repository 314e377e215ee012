// The operations console page: it opens the console's WebSocket, which pushes the last
// ten minutes on opening and a sample every second after, and draws them: tiles,
// uPlot charts, the room threads, disconnects, rooms, the inspected room and the audit
// log. Actions go to the JSON API with the session cookie. Nothing here polls.
"use strict";

const HISTORY = 600;
const $ = (id) => document.getElementById(id);

const state = {
  connected: false,
  samples: 0,
  lastSeq: 0,
  points: [],
  rooms: [],
  inspected: null,
  inspect: null,
  audit: [],
  charts: [],
  chartsKey: "",
};

// What the page shows, for automated browsers (the game page has skirmishProbe).
window.skirmishConsole = () => ({
  connected: state.connected,
  samples: state.samples,
  lastSeq: state.lastSeq,
  points: state.points.length,
  last: state.points[state.points.length - 1] || null,
  rooms: state.rooms,
  inspected: state.inspected,
  inspect: state.inspect,
  audit: state.audit,
  chartPoints: state.charts.map((chart) => (chart.plot.data[0] || []).length),
});

function fmtBytes(perSecond) {
  if (perSecond == null) return "–";
  if (perSecond >= 1048576) return (perSecond / 1048576).toFixed(1) + " MiB/s";
  if (perSecond >= 1024) return (perSecond / 1024).toFixed(1) + " KiB/s";
  return perSecond.toFixed(0) + " B/s";
}
const fmtMs = (ms) => (ms == null ? "–" : ms.toFixed(ms < 1 ? 3 : 2) + " ms");
const fmtNum = (n, digits) => (n == null ? "–" : n.toFixed(digits));
function fmtDuration(seconds) {
  if (seconds == null) return "–";
  const s = Math.floor(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}h ${String(m).padStart(2, "0")}m` : `${m}:${rest}`;
}

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function button(label, onClick, className) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  if (className) b.className = className;
  b.addEventListener("click", onClick);
  return b;
}

function fillTable(id, rows, fill, emptyText) {
  const body = $(id).tBodies[0];
  body.replaceChildren();
  if (rows.length === 0) {
    const row = body.insertRow();
    const td = cell(row, emptyText, "empty");
    td.colSpan = $(id).tHead.rows[0].cells.length;
    return;
  }
  for (const item of rows) fill(body.insertRow(), item);
}

// ---- Charts -------------------------------------------------------------------------

const COLORS = ["#4dabf7", "#ff922b", "#51cf66", "#f783ac", "#fcc419", "#845ef7", "#20c997", "#ff6b6b"];

// Each chart: a title, and the series it draws from a point (a sample's server figures).
function chartSpecs(points) {
  const threads = [...new Set(points.flatMap((p) => p.threads.map((t) => t.thread)))];
  const reasons = [...new Set(points.flatMap((p) => p.disconnects.map((d) => d.reason)))];
  const perThread = (field) => threads.map((thread) => ({
    label: `${thread}`,
    value: (p) => {
      const t = p.threads.find((t) => t.thread === thread);
      return t ? t[field] : null;
    },
  }));
  return [
    { title: "Players, connections and rooms", series: [
      { label: "players", value: (p) => p.players },
      { label: "connections", value: (p) => p.connections },
      { label: "rooms", value: (p) => p.rooms },
    ] },
    { title: "CPU (% of a core) and memory (MiB)", series: [
      { label: "CPU %", value: (p) => p.cpu_percent },
      { label: "RSS MiB", value: (p) => p.rss_mib },
    ] },
    { title: "Game traffic (KiB/s)", series: [
      { label: "in", value: (p) => p.bytes_in_per_s / 1024 },
      { label: "out", value: (p) => p.bytes_out_per_s / 1024 },
    ] },
    { title: "Tick duration p99 (ms)", series: perThread("duration_p99_ms") },
    { title: "Tick lateness p99 (ms)", series: perThread("lateness_p99_ms") },
    { title: "Tick duration p50 (ms)", series: perThread("duration_p50_ms") },
    { title: "Disconnects per second", series: reasons.map((reason) => ({
      label: reason,
      value: (p) => {
        const d = p.disconnects.find((d) => d.reason === reason);
        return d ? d.per_s : 0;
      },
    })) },
  ];
}

function chartData(spec, points) {
  return [points.map((p) => p.t), ...spec.series.map((s) => points.map(s.value))];
}

function chartWidth() {
  const first = $("charts").firstElementChild;
  return Math.max(300, (first ? first.clientWidth : 440) - 12);
}

// Builds the charts anew when the set of series changes (a new thread or reason),
// and otherwise only hands them new data.
function drawCharts() {
  const specs = chartSpecs(state.points);
  const key = specs.map((s) => s.series.map((x) => x.label).join(",")).join("|");
  if (key !== state.chartsKey) {
    state.chartsKey = key;
    for (const chart of state.charts) chart.plot.destroy();
    $("charts").replaceChildren();
    state.charts = specs.map((spec) => {
      const box = document.createElement("div");
      box.className = "chart";
      const title = document.createElement("h3");
      title.textContent = spec.title;
      box.append(title);
      $("charts").append(box);
      const options = {
        width: Math.max(300, box.clientWidth - 12),
        height: 180,
        legend: { show: true },
        scales: { x: { time: true } },
        axes: [
          { stroke: "#8a90a0", grid: { stroke: "#262a35" } },
          { stroke: "#8a90a0", grid: { stroke: "#262a35" } },
        ],
        series: [{}, ...spec.series.map((s, i) => ({
          label: s.label,
          stroke: COLORS[i % COLORS.length],
          width: 1.5,
          spanGaps: true,
        }))],
      };
      return { spec, plot: new uPlot(options, chartData(spec, state.points), box) };
    });
    return;
  }
  for (const chart of state.charts) chart.plot.setData(chartData(chart.spec, state.points));
}

window.addEventListener("resize", () => {
  const width = chartWidth();
  for (const chart of state.charts) chart.plot.setSize({ width, height: 180 });
});

// ---- Figures and tables --------------------------------------------------------------

function showServer(data) {
  const s = data.server;
  $("stat-uptime").textContent = fmtDuration(s.uptime_s);
  $("stat-version").textContent = data.version;
  $("stat-cpu").textContent = s.cpu_percent == null ? "–" : s.cpu_percent.toFixed(1) + " %";
  $("stat-rss").textContent = s.rss_mib == null ? "–" : s.rss_mib.toFixed(1) + " MiB";
  $("stat-connections").textContent = s.connections;
  $("stat-rooms").textContent = s.rooms;
  $("stat-players").textContent = s.players;
  $("stat-in").textContent = fmtBytes(s.bytes_in_per_s);
  $("stat-out").textContent = fmtBytes(s.bytes_out_per_s);
  $("draining").hidden = !data.draining;
  fillTable("threads", s.threads, (row, t) => {
    cell(row, t.thread);
    cell(row, fmtNum(t.ticks_per_s, 0));
    cell(row, fmtMs(t.duration_p50_ms));
    cell(row, fmtMs(t.duration_p99_ms));
    cell(row, fmtMs(t.lateness_p50_ms));
    cell(row, fmtMs(t.lateness_p99_ms));
  }, "no room thread has ticked");
  fillTable("disconnects", s.disconnects, (row, d) => {
    cell(row, d.reason);
    cell(row, String(d.total));
    cell(row, fmtNum(d.per_s, 1));
  }, "no game connection has closed yet");
}

function showRooms(rooms) {
  state.rooms = rooms;
  fillTable("rooms", rooms, (row, room) => {
    if (room.id === state.inspected) row.className = "selected";
    row.dataset.room = room.id;
    cell(row, room.id);
    cell(row, `${room.players}/${room.capacity}`);
    cell(row, room.phase);
    cell(row, fmtDuration(room.seconds_left));
    cell(row, fmtMs(room.tick_p99_ms));
    cell(row, fmtBytes(room.bytes_per_s));
    const actions = row.insertCell();
    actions.append(button("Inspect", () => inspect(room.id), "inspect"));
    actions.append(" ");
    actions.append(button("Close", () => closeRoom(room.id), "danger close"));
  }, "no room is open");
}

function showInspector(report) {
  state.inspect = report;
  $("inspector").hidden = state.inspected == null;
  $("inspector-room").textContent = state.inspected || "";
  const players = report ? report.players : [];
  fillTable("inspector-players", players, (row, p) => {
    row.dataset.player = p.id;
    row.dataset.name = p.name;
    cell(row, String(p.id));
    cell(row, p.away ? `${p.name} (away)` : p.name);
    cell(row, fmtMs(p.ping_ms));
    cell(row, fmtNum(p.bytes_in_per_s, 0));
    cell(row, fmtNum(p.bytes_out_per_s, 0));
    cell(row, fmtNum(p.inputs_per_s, 1));
    cell(row, fmtMs(p.ack_lag_ms));
    row.insertCell().append(button("Kick", () => kick(report.id, p.id, p.name), "danger kick"));
  }, report ? "nobody is in the room" : "waiting for the room…");
}

function showAudit(entries) {
  state.audit = entries;
  fillTable("audit", entries, (row, e) => {
    cell(row, new Date(e.at_ms).toLocaleString());
    cell(row, e.who);
    cell(row, e.action);
    cell(row, e.target);
    cell(row, e.detail);
  }, "no action has been taken");
}

// ---- Actions -------------------------------------------------------------------------

function say(text, failed) {
  $("action-result").textContent = text;
  $("action-result").className = failed ? "error" : "";
}

async function act(path, body, done) {
  try {
    const response = await fetch(path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: body == null ? "" : JSON.stringify(body),
      credentials: "same-origin",
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) {
      say(`Refused (${response.status}): ${answer.error || response.statusText}`, true);
      return;
    }
    say(done(answer), false);
  } catch (err) {
    say(`The request failed: ${err}`, true);
  }
}

function inspect(room) {
  state.inspected = room;
  showInspector(null);
  showRooms(state.rooms);
  send({ inspect: room });
}

function kick(room, player, name) {
  const reason = $("kick-reason").value.trim();
  act(`/admin/api/rooms/${encodeURIComponent(room)}/players/${player}/kick`,
    reason ? { reason } : {},
    () => `Kicked ${name} from ${room}.`);
}

function closeRoom(room) {
  if (!window.confirm(`Close room ${room}? Everyone in it is let go.`)) return;
  act(`/admin/api/rooms/${encodeURIComponent(room)}/close`, null,
    (answer) => `Closed ${room}; ${answer.players} players let go.`);
}

$("broadcast-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("broadcast-text").value.trim();
  if (!text) return;
  act("/admin/api/broadcast", { text }, (answer) => {
    $("broadcast-text").value = "";
    return `Sent to ${answer.rooms} rooms.`;
  });
});

$("drain").addEventListener("click", () => {
  if (!window.confirm("Drain the server? It takes no new players, and exits once every match is over.")) return;
  act("/admin/api/drain", null, () => "Draining: rooms close as their matches end.");
});

// ---- The socket ----------------------------------------------------------------------

let socket = null;
// Sockets that closed before they opened: a session that ended (logged out elsewhere,
// or expired) is refused, and the login form is what the page should show then.
let refusedInARow = 0;

function send(msg) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(msg));
}

function setLink(up, text) {
  state.connected = up;
  $("link").textContent = text;
  $("link").className = up ? "link up" : "link down";
}

function received(msg) {
  if (msg.type === "history") {
    state.points = msg.points.slice(-HISTORY);
    drawCharts();
    return;
  }
  if (msg.type !== "sample" || !msg.data) return;
  state.samples += 1;
  state.lastSeq = msg.seq;
  state.points.push(msg.data.server);
  if (state.points.length > HISTORY) state.points.splice(0, state.points.length - HISTORY);
  showServer(msg.data);
  showRooms(msg.data.rooms);
  if (state.inspected != null) showInspector(msg.inspect);
  if (msg.audit != null) showAudit(msg.audit);
  drawCharts();
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/admin/ws`);
  let opened = false;
  socket.addEventListener("open", () => {
    opened = true;
    refusedInARow = 0;
    setLink(true, "live");
    if (state.inspected != null) send({ inspect: state.inspected });
  });
  socket.addEventListener("message", (event) => received(JSON.parse(event.data)));
  socket.addEventListener("close", (event) => {
    refusedInARow = opened ? 0 : refusedInARow + 1;
    if (refusedInARow >= 3) {
      location.reload();
      return;
    }
    setLink(false, `disconnected (${event.code}); retrying…`);
    setTimeout(connect, 2000);
  });
}

connect();
