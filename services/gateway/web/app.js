// flmngr web console: a dashboard of tasks and clients kept live by the
// event stream, task and client pages, and forms whose validation messages
// come from the API. No framework and no CDN: everything is in the binary.
"use strict";

const app = document.getElementById("app");
const live = document.getElementById("live");
const announcer = document.getElementById("announce");

// h builds DOM nodes: h("a", {href: "#/"}, "text", child...). Text is
// always inserted as text, never as HTML.
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function announce(text) {
  announcer.textContent = "";
  setTimeout(() => { announcer.textContent = text; }, 50);
}

// api calls the REST API; an error answer becomes an Error carrying the
// API's {kind, message, field}.
async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: {} };
  if (body instanceof FormData) init.body = body;
  else {
    if (body !== undefined) init.body = JSON.stringify(body);
    // The gateway takes the console's cookie for a write only with a
    // JSON type (uploads: multipart), from this origin.
    if (method !== "GET") init.headers["Content-Type"] = "application/json";
  }
  const res = await fetch("/api/v1" + path, init);
  if (res.status === 204) return null;
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const e = (data && data.error) || { kind: "internal", message: res.statusText };
    const err = new Error(e.message);
    err.kind = e.kind;
    err.field = e.field;
    err.status = res.status;
    throw err;
  }
  return data;
}

const fmt = {
  time: (t) => (t ? new Date(t).toLocaleString() : "—"),
  clock: (t) => new Date(t).toLocaleTimeString([], { hour12: false }) + "." + String(new Date(t).getMilliseconds()).padStart(3, "0"),
  acc: (m) => (m && m.accuracy !== undefined ? m.accuracy.toFixed(4) : "—"),
  ms(d) {
    if (d < 1) return (d * 1000).toFixed(0) + " µs";
    if (d < 1000) return d.toFixed(2) + " ms";
    return (d / 1000).toFixed(3) + " s";
  },
};

function badge(status) {
  return h("span", { class: "badge s-" + status }, status.replace("_", " "));
}

function errorBox(err) {
  if (err.status === 401 || err.status === 403) {
    return h("p", { class: "form-error", role: "alert" }, err.message, " ", h("a", { href: "#/login" }, "Enter the admin token."));
  }
  return h("p", { class: "form-error", role: "alert" }, err.message);
}

// The event stream: every page registers what to refresh on events.
let refresh = null;
let refreshTimer = null;
let events = null;
let retryTimer = null;
function connectEvents() {
  if (events) events.close();
  clearTimeout(retryTimer);
  const es = new EventSource("/api/v1/events/stream");
  events = es;
  es.onopen = () => {
    live.textContent = "live";
    live.className = "live on";
    if (refresh) refresh();
  };
  es.onerror = () => {
    live.textContent = "reconnecting…";
    live.className = "live off";
    // The browser retries dropped connections by itself, but not refused
    // ones (no token yet, the cloud restarting): retry those here.
    if (es.readyState === EventSource.CLOSED) retryTimer = setTimeout(connectEvents, 3000);
  };
  es.onmessage = () => {};
  const types = ["task.created.v1", "task.updated.v1", "task.deleted.v1", "task.files_uploaded.v1", "task.start_requested.v1",
    "task.server_started.v1", "task.round_completed.v1", "task.finished.v1", "task.errored.v1", "task.stop_requested.v1",
    "task.stopped.v1", "task.interrupted.v1", "client.registered.v1", "client.info_reported.v1", "client.offers_changed.v1",
    "client.task_started.v1", "client.task_running.v1", "client.task_finished.v1", "client.task_errored.v1",
    "client.task_stopped.v1", "client.task_quarantined.v1", "client.task_exited.v1", "client.disconnected.v1", "client.reconnected.v1",
    "client.task_interrupted.v1", "task.server_exited.v1", "task.step_reported.v1", "task.signed.v1", "client.task_refused.v1",
    "client.task_awaiting_approval.v1", "client.task_approved.v1"];
  for (const t of types) {
    es.addEventListener(t, (ev) => {
      if (!refresh) return;
      clearTimeout(refreshTimer);
      refreshTimer = setTimeout(() => refresh && refresh(JSON.parse(ev.data)), 150);
    });
  }
}

// ---- pages ----

async function dashboard() {
  const tasksSection = h("section", { "aria-labelledby": "tasks-h" }, h("h2", { id: "tasks-h" }, "Tasks"));
  const clientsSection = h("section", { "aria-labelledby": "clients-h" }, h("h2", { id: "clients-h" }, "Clients"));
  app.replaceChildren(h("h2", { class: "visually-hidden" }, "Dashboard"), tasksSection, clientsSection);
  async function draw() {
    let tasks, clients;
    try {
      [tasks, clients] = await Promise.all([api("GET", "/tasks"), api("GET", "/clients")]);
    } catch (err) {
      tasksSection.replaceChildren(h("h2", { id: "tasks-h" }, "Tasks"), errorBox(err));
      return;
    }
    tasksSection.replaceChildren(h("h2", { id: "tasks-h" }, "Tasks"), tasks.length === 0
      ? h("p", { class: "empty" }, "No task yet. ", h("a", { href: "#/new" }, "Create one."))
      : h("div", { class: "table-wrap" }, h("table", { id: "tasks" },
        h("caption", { class: "visually-hidden" }, "Tasks, their state, clients, round and accuracy"),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Task"), h("th", { scope: "col" }, "State"),
          h("th", { scope: "col", class: "num" }, "Clients"), h("th", { scope: "col", class: "num" }, "Round"),
          h("th", { scope: "col", class: "num" }, "Accuracy"), h("th", { scope: "col", class: "hide-sm" }, "Criterion"))),
        h("tbody", {}, tasks.map((t) => h("tr", { "data-task": t.id, "data-status": t.status },
          h("th", { scope: "row" }, h("a", { href: "#/tasks/" + encodeURIComponent(t.id) }, t.id)),
          h("td", {}, badge(t.status)),
          h("td", { class: "num" }, t.clients.length),
          h("td", { class: "num" }, t.round || "—"),
          h("td", { class: "num" }, fmt.acc(t.metrics)),
          h("td", { class: "hide-sm" }, h("code", {}, t.spec.selection_criteria || "(every client)"))))))));
    clientsSection.replaceChildren(h("h2", { id: "clients-h" }, "Clients"), clients.length === 0
      ? h("p", { class: "empty" }, "No client has registered yet. Run ", h("code", {}, "flmngr client --id ID"), ".")
      : h("div", { class: "table-wrap" }, h("table", { id: "clients" },
        h("caption", { class: "visually-hidden" }, "Clients, online, attributes, current task, quarantined tasks"),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Client"), h("th", { scope: "col" }, "Online"),
          h("th", { scope: "col" }, "Sensors"), h("th", { scope: "col", class: "num hide-sm" }, "Data"),
          h("th", { scope: "col" }, "Running"), h("th", { scope: "col" }, "Quarantined"))),
        h("tbody", {}, clients.map((c) => h("tr", { "data-client": c.id },
          h("th", { scope: "row" }, h("a", { href: "#/clients/" + encodeURIComponent(c.id) }, c.id)),
          h("td", {}, badge(c.online ? "online" : "offline")),
          h("td", {}, (c.attributes.sensors || []).join(", ") || "—"),
          h("td", { class: "num hide-sm" }, c.attributes.data_qnt),
          h("td", {}, (c.running || []).map((r) => r.task_id + " (run " + r.run + ")").join(", ") || "—"),
          h("td", {}, (c.quarantined || []).map((q) => q.task_id).join(", ") || "—")))))));
  }
  refresh = draw;
  await draw();
}

function field(name, label, attrs, hint) {
  const id = "f-" + name;
  const err = h("p", { class: "error", id: id + "-err", hidden: true });
  const input = attrs.rows ? h("textarea", Object.assign({ id, name, "aria-describedby": id + "-hint " + id + "-err" }, attrs))
    : h("input", Object.assign({ id, name, "aria-describedby": id + "-hint " + id + "-err" }, attrs));
  return h("div", { class: "field", "data-field": name }, h("label", { for: id }, label), input,
    h("span", { class: "hint", id: id + "-hint" }, hint || ""), err);
}

// showErrors puts an API error next to the field it names, or above the
// form when it names none.
function showErrors(form, err) {
  for (const f of form.querySelectorAll(".field")) {
    const input = f.querySelector("input, textarea");
    const box = f.querySelector(".error");
    input.removeAttribute("aria-invalid");
    box.hidden = true;
    box.textContent = "";
  }
  const top = form.querySelector(".form-error");
  top.textContent = "";
  if (!err) return;
  const aliases = { task_id: "id", selection_criteria: "criterion", server_arguments: "server_arguments", client_arguments: "client_arguments",
    server_command: "server_command", client_command: "client_command", files_paths: "files_paths" };
  const name = aliases[err.field] || err.field;
  const f = name && form.querySelector('.field[data-field="' + name + '"]');
  if (f) {
    const input = f.querySelector("input, textarea");
    const box = f.querySelector(".error");
    input.setAttribute("aria-invalid", "true");
    box.textContent = err.message;
    box.hidden = false;
    input.focus();
  } else {
    top.textContent = err.message;
    top.focus();
  }
  announce(err.message);
}

const list = (s) => s.split(",").map((x) => x.trim()).filter(Boolean);
const words = (s) => s.split(/\s+/).filter(Boolean);

function taskForm(existing) {
  const s = existing ? existing.spec : {};
  const form = h("form", { class: "card", id: existing ? "update-form" : "create-form", novalidate: true },
    h("p", { class: "form-error", role: "alert", tabindex: "-1" }),
    existing ? null : field("id", "Task ID", { required: true, autocomplete: "off" }, "letters, digits, _ and -"),
    field("host", "Host", { required: !existing, value: s.host || "" }, "where the task's server listens"),
    field("port", "Port", { inputmode: "numeric", value: s.port || "" }, "1–65535"),
    field("criterion", "Selection criterion", { value: s.selection_criteria || "", spellcheck: "false" }, 'e.g. "camera" in sensors && data_qnt > 100; empty selects every client'),
    field("files_paths", "Files clients download", { value: (s.files_paths || []).join(", ") }, "comma-separated, e.g. client.py, task.py"),
    field("server_arguments", "Server arguments", { value: s.server_arguments || "" }),
    field("client_arguments", "Client arguments", { value: s.client_arguments || "" }),
    field("tags", "Tags", { value: (s.tags || []).join(", ") }, "comma-separated"),
    field("server_command", "Server command", { value: (s.server_command || []).join(" "), spellcheck: "false" }, "replaces python3 server.py <workdir>; placeholders {flmngr} {host} {port} {task} {run}"),
    field("client_command", "Client command", { value: (s.client_command || []).join(" "), spellcheck: "false" }, "replaces python3 client.py <workdir>"),
    existing ? null : field("username", "Download username", { autocomplete: "off" }, "for the original's /download endpoint"),
    existing ? null : field("password", "Download password", { type: "password", autocomplete: "new-password" }, "stored only as a bcrypt hash"),
    h("div", { class: "actions" }, h("button", { class: "primary", type: "submit" }, existing ? "Save changes" : "Create task")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const v = (n) => { const el = form.elements[n]; return el ? el.value.trim() : ""; };
    const body = {
      host: v("host"), port: v("port") === "" ? 0 : Number(v("port")),
      selection_criteria: v("criterion"), files_paths: list(v("files_paths")), server_arguments: v("server_arguments"),
      tags: list(v("tags")), server_command: words(v("server_command")), client_command: words(v("client_command")),
    };
    if (v("client_arguments") !== "") body.client_arguments = v("client_arguments");
    if (Number.isNaN(body.port)) { showErrors(form, { field: "port", message: "port must be a number" }); return; }
    try {
      if (existing) {
        await api("PATCH", "/tasks/" + encodeURIComponent(existing.id), body);
        showErrors(form, null);
        announce("Task saved");
      } else {
        body.task_id = v("id");
        if (v("username")) body.username = v("username");
        if (v("password")) body.password = v("password");
        await api("POST", "/tasks", body);
        announce("Task " + body.task_id + " created");
        location.hash = "#/tasks/" + encodeURIComponent(body.task_id);
      }
    } catch (err) {
      showErrors(form, err);
    }
  });
  return form;
}

function newTask() {
  refresh = null;
  app.replaceChildren(h("h2", {}, "New task"), taskForm(null));
  app.querySelector("input").focus();
}

function uploadForm(id, onDone) {
  const form = h("form", { class: "card", id: "upload-form", novalidate: true },
    h("p", { class: "form-error", role: "alert", tabindex: "-1" }),
    field("files", "Files", { type: "file", multiple: true }, "server.py, client.py, … (64 MiB each at most)"),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Upload")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const data = new FormData();
    for (const f of form.elements.files.files) data.append("files", f, f.name);
    try {
      const res = await api("POST", "/tasks/" + encodeURIComponent(id) + "/files", data);
      showErrors(form, null);
      form.reset();
      announce("Uploaded " + res.files.map((f) => f.name).join(", "));
      onDone();
    } catch (err) {
      showErrors(form, err);
    }
  });
  return form;
}

// chart draws accuracy (left axis, 0–1) and loss (right axis) per round.
function chart(rounds) {
  const W = 640, H = 240, L = 44, R = 44, T = 16, B = 30;
  const svgNS = "http://www.w3.org/2000/svg";
  const s = (tag, attrs, text) => {
    const el = document.createElementNS(svgNS, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    if (text !== undefined) el.textContent = text;
    return el;
  };
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": "chart-title", id: "accuracy-chart" });
  svg.append(s("title", { id: "chart-title" }, rounds.length ? `Accuracy and loss over ${rounds.length} rounds; last accuracy ${fmt.acc(rounds[rounds.length - 1].metrics)}` : "No round completed yet"));
  const n = Math.max(rounds.length, 2);
  const x = (i) => L + (i * (W - L - R)) / (n - 1);
  // The accuracy axis starts a little under the lowest accuracy, on a
  // multiple of 0.05, so that close rounds stay apart.
  const accs = rounds.map((r) => (r.metrics || {}).accuracy).filter((v) => v !== undefined);
  const lo = accs.length ? Math.max(0, Math.floor((Math.min(...accs) - 0.02) * 20) / 20) : 0;
  const yAcc = (a) => T + (1 - (a - lo) / (1 - lo || 1)) * (H - T - B);
  const losses = rounds.map((r) => (r.metrics || {}).loss).filter((v) => v !== undefined);
  const maxLoss = Math.max(1e-9, ...losses) * 1.1;
  const yLoss = (l) => T + (1 - l / maxLoss) * (H - T - B);
  svg.append(s("line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }), s("line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }));
  for (let k = 0; k <= 4; k++) {
    const a = lo + (k * (1 - lo)) / 4;
    svg.append(s("text", { x: 4, y: yAcc(a) + 4 }, a.toFixed(2)));
  }
  rounds.forEach((r, i) => svg.append(s("text", { x: x(i) - 4, y: H - 10 }, String(r.round))));
  const acc = rounds.filter((r) => r.metrics && r.metrics.accuracy !== undefined);
  if (acc.length) {
    svg.append(s("polyline", { class: "acc", points: acc.map((r, i) => `${x(i)},${yAcc(r.metrics.accuracy)}`).join(" ") }));
    acc.forEach((r, i) => svg.append(s("circle", { class: "dot-acc", cx: x(i), cy: yAcc(r.metrics.accuracy), r: 3.5 })));
  }
  const withLoss = rounds.filter((r) => r.metrics && r.metrics.loss !== undefined);
  if (withLoss.length) {
    svg.append(s("polyline", { class: "loss", points: withLoss.map((r, i) => `${x(i)},${yLoss(r.metrics.loss)}`).join(" ") }));
    svg.append(s("text", { x: W - R + 4, y: T + 10 }, maxLoss.toFixed(2)));
  }
  const table = h("table", { class: "visually-hidden" }, h("caption", {}, "Metrics by round"),
    h("tr", {}, h("th", {}, "Round"), h("th", {}, "Accuracy"), h("th", {}, "Loss")),
    rounds.map((r) => h("tr", {}, h("td", {}, r.round), h("td", {}, fmt.acc(r.metrics)), h("td", {}, r.metrics && r.metrics.loss !== undefined ? r.metrics.loss.toFixed(4) : "—"))));
  return h("div", { class: "chart" }, svg,
    h("p", { class: "legend" }, h("span", { class: "k-acc" }, "— accuracy"), " (left)   ", h("span", { class: "k-loss" }, "- - loss"), " (right)"), table);
}

function timelineTable(entries) {
  if (!entries.length) return h("p", { class: "empty" }, "No events.");
  let prev = new Date(entries[0].time), first = prev;
  return h("div", { class: "table-wrap" }, h("table", { id: "timeline" },
    h("caption", { class: "visually-hidden" }, "Timeline with step latencies"),
    h("thead", {}, h("tr", {}, h("th", { scope: "col", class: "num" }, "Seq"), h("th", { scope: "col" }, "Time"),
      h("th", { scope: "col", class: "num" }, "Step"), h("th", { scope: "col", class: "num hide-sm" }, "Since start"),
      h("th", { scope: "col" }, "Event"), h("th", { scope: "col", class: "hide-sm" }, "Source"), h("th", { scope: "col" }, "Detail"))),
    h("tbody", {}, entries.map((e) => {
      const t = new Date(e.time);
      const row = h("tr", {}, h("td", { class: "num" }, e.seq), h("td", {}, fmt.clock(e.time)),
        h("td", { class: "num" }, "+" + fmt.ms(t - prev)), h("td", { class: "num hide-sm" }, fmt.ms(t - first)),
        h("td", {}, h("code", {}, e.type)), h("td", { class: "hide-sm" }, e.source), h("td", {}, e.kind === "client" ? e.aggregate + ": " + (e.detail || "") : e.detail || ""));
      prev = t;
      return row;
    }))));
}

let logStream = null, roundStream = null;
function closeStreams() {
  if (logStream) logStream.close();
  if (roundStream) roundStream.close();
  logStream = roundStream = null;
}

async function taskPage(id) {
  let t;
  try {
    t = await api("GET", "/tasks/" + encodeURIComponent(id));
  } catch (err) {
    refresh = null;
    app.replaceChildren(h("h2", {}, "Task " + id), errorBox(err));
    return;
  }
  const head = h("div");
  const chartBox = h("section", { "aria-labelledby": "chart-h" }, h("h3", { id: "chart-h" }, "Accuracy and loss by round"));
  const logsBox = h("section", { "aria-labelledby": "logs-h" }, h("h3", { id: "logs-h" }, "Process output"), h("div", { class: "logs" }));
  const timelineBox = h("section", { "aria-labelledby": "tl-h" }, h("h3", { id: "tl-h" }, "Timeline"));
  const forms = h("div", { class: "grid2" },
    h("section", { "aria-labelledby": "upd-h" }, h("h3", { id: "upd-h" }, "Update"), taskForm(t)),
    h("section", { "aria-labelledby": "up-h" }, h("h3", { id: "up-h" }, "Upload files"), uploadForm(id, () => draw())));
  app.replaceChildren(h("h2", {}, "Task ", h("code", {}, id)), head, chartBox, logsBox, timelineBox, forms);
  let rounds = [];
  let run = t.run;

  async function act(path, label, method = "POST") {
    try {
      await api(method, "/tasks/" + encodeURIComponent(id) + path);
      announce(label);
      if (method === "DELETE") location.hash = "#/";
    } catch (err) {
      head.querySelector(".form-error").textContent = err.message;
      announce(err.message);
    }
  }

  async function drawChart() {
    rounds = await api("GET", "/tasks/" + encodeURIComponent(id) + "/metrics").catch(() => []);
    chartBox.replaceChildren(h("h3", { id: "chart-h" }, "Accuracy and loss by round"), chart(rounds));
  }

  function follow() {
    closeStreams();
    const panes = logsBox.querySelector(".logs");
    panes.replaceChildren();
    const paneFor = (origin) => {
      let pane = panes.querySelector('[data-origin="' + CSS.escape(origin) + '"] pre');
      if (!pane) {
        pane = h("pre", { tabindex: "0", "aria-label": "output of " + origin });
        panes.append(h("div", { class: "logpane", "data-origin": origin }, h("h4", {}, origin), pane));
      }
      return pane;
    };
    if (!run) { panes.append(h("p", { class: "empty" }, "Not started yet.")); return; }
    logStream = new EventSource("/api/v1/tasks/" + encodeURIComponent(id) + "/logs/stream?run=" + encodeURIComponent(run));
    logStream.addEventListener("log", (ev) => {
      const l = JSON.parse(ev.data);
      const pane = paneFor(l.origin);
      const stick = pane.scrollTop + pane.clientHeight >= pane.scrollHeight - 4;
      pane.append(document.createTextNode(fmt.clock(l.time) + " " + (l.kind === "log" ? "" : "[" + l.kind + "] ") + l.text + "\n"));
      if (pane.childNodes.length > 2000) pane.firstChild.remove();
      if (stick) pane.scrollTop = pane.scrollHeight;
    });
    roundStream = new EventSource("/api/v1/tasks/" + encodeURIComponent(id) + "/metrics/stream");
    roundStream.addEventListener("round", (ev) => {
      const r = JSON.parse(ev.data);
      if (r.run !== run || rounds.some((x) => x.seq === r.seq)) return;
      rounds.push(r);
      chartBox.replaceChildren(h("h3", { id: "chart-h" }, "Accuracy and loss by round"), chart(rounds));
    });
  }

  async function draw() {
    try {
      t = await api("GET", "/tasks/" + encodeURIComponent(id));
    } catch (err) {
      head.replaceChildren(errorBox(err));
      return;
    }
    const s = t.spec;
    head.replaceChildren(
      h("p", { class: "form-error", role: "alert" }),
      h("div", { class: "actions" },
        h("button", { class: "primary", id: "start", disabled: t.running || t.status === "stop_requested", onclick: () => act("/start", "Start requested") }, "Start"),
        h("button", { id: "stop", disabled: !t.running, onclick: () => act("/stop", "Stop requested") }, "Stop"),
        h("button", { class: "danger", id: "delete", disabled: t.running, onclick: () => confirm("Delete task " + id + "?") && act("", "Deleted", "DELETE") }, "Delete")),
      h("dl", { class: "props", id: "task-props" },
        h("dt", {}, "State"), h("dd", { id: "task-status" }, badge(t.status), t.run ? " run " + t.run : ""),
        h("dt", {}, "Round"), h("dd", {}, t.round ? t.round + " — accuracy " + fmt.acc(t.metrics) : "—"),
        t.last_error ? [h("dt", {}, "Last error"), h("dd", {}, t.last_error)] : null,
        h("dt", {}, "Clients running it"), h("dd", {}, t.clients.join(", ") || "—"),
        (t.awaiting_approval || []).length ? [h("dt", {}, "Awaiting approval"), h("dd", { id: "task-awaiting" }, t.awaiting_approval.map((c) => "at site " + c).join(", "))] : null,
        h("dt", {}, "Address"), h("dd", {}, s.host + ":" + s.port),
        h("dt", {}, "Selection criterion"), h("dd", {}, h("code", {}, s.selection_criteria || "(every client)")),
        h("dt", {}, "Server"), h("dd", {}, h("code", {}, (s.server_command && s.server_command.length ? s.server_command.join(" ") : "python3 server.py <workdir>") + " " + (s.server_arguments || ""))),
        h("dt", {}, "Client"), h("dd", {}, h("code", {}, (s.client_command && s.client_command.length ? s.client_command.join(" ") : "python3 client.py <workdir>") + " " + (s.client_arguments || ""))),
        h("dt", {}, "Files"), h("dd", {}, (t.files || []).map((f) => f.name + " (" + f.size + " B)").join(", ") || "none uploaded"),
        h("dt", {}, "Tags"), h("dd", {}, (s.tags || []).join(", ") || "—"),
        h("dt", {}, "Created"), h("dd", {}, fmt.time(t.created_at)),
        h("dt", {}, "Last modified"), h("dd", {}, fmt.time(t.updated_at))));
    const tl = await api("GET", "/tasks/" + encodeURIComponent(id) + "/timeline?limit=500").catch(() => ({ entries: [] }));
    timelineBox.replaceChildren(h("h3", { id: "tl-h" }, "Timeline"), timelineTable(tl.entries));
    if (t.run !== run) {
      run = t.run;
      await drawChart();
      follow();
    }
  }

  refresh = () => draw();
  await draw();
  await drawChart();
  follow();
}

async function clientPage(id) {
  closeStreams();
  async function draw() {
    let c;
    try {
      c = await api("GET", "/clients/" + encodeURIComponent(id));
    } catch (err) {
      app.replaceChildren(h("h2", {}, "Client " + id), errorBox(err));
      return;
    }
    const a = c.attributes;
    app.replaceChildren(h("h2", {}, "Client ", h("code", {}, id)),
      h("dl", { class: "props" },
        h("dt", {}, "Online"), h("dd", {}, badge(c.online ? "online" : "offline")),
        h("dt", {}, "Sensors"), h("dd", {}, (a.sensors || []).join(", ") || "—"),
        h("dt", {}, "Data"), h("dd", {}, a.data_qnt),
        h("dt", {}, "Accuracy contribution"), h("dd", {}, a.avg_acc_contrib ?? "null"),
        h("dt", {}, "Disconnections per round"), h("dd", {}, a.avg_disconnection_per_round ?? "null"),
        Object.entries(a.extra || {}).map(([k, v]) => [h("dt", {}, "attrs." + k), h("dd", {}, String(v))]),
        h("dt", {}, "Running"), h("dd", {}, (c.running || []).map((r) => r.task_id + " run " + r.run + " (pid " + r.pid + ")").join(", ") || "—"),
        h("dt", {}, "Quarantined"), h("dd", {}, (c.quarantined || []).map((q) => q.task_id + " run " + q.run + ": " + q.reason).join("; ") || "—"),
        (c.awaiting_approval || []).length ? [h("dt", {}, "Awaiting approval"), h("dd", { id: "client-awaiting" }, c.awaiting_approval.map((w) =>
          w.task_id + " run " + w.run + " (statement sha256:" + w.statement_sha256.slice(0, 12) + "…, " + (w.signers && w.signers.length ? "signed by " + w.signers.join(", ") : "unsigned") + ")").join("; "))] : null,
        h("dt", {}, "Registered"), h("dd", {}, fmt.time(c.created_at))),
      h("section", { "aria-labelledby": "why-h" }, h("h3", { id: "why-h" }, "Why each running task is or is not offered"),
        c.why.length === 0 ? h("p", { class: "empty" }, "No task is running.") : h("div", { class: "table-wrap" }, h("table", { id: "why" },
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Task"), h("th", { scope: "col" }, "Criterion"), h("th", { scope: "col" }, "Offered"), h("th", { scope: "col" }, "Why not"))),
          h("tbody", {}, c.why.map((w) => h("tr", {},
            h("th", { scope: "row" }, h("a", { href: "#/tasks/" + encodeURIComponent(w.task_id) }, w.task_id)),
            h("td", {}, h("code", {}, w.criterion || "(every client)")),
            h("td", {}, w.matched ? "yes" : "no"),
            h("td", {}, w.matched ? "" : w.error || "the criterion is false for these attributes"))))))),
      h("section", { "aria-labelledby": "offers-h" }, h("h3", { id: "offers-h" }, "Offers, by priority"),
        (c.offers || []).length ? h("ol", {}, c.offers.map((o) => h("li", {}, o.task_id + " run " + o.run + " at " + o.host + ":" + o.port))) : h("p", { class: "empty" }, "None.")));
    const tl = await api("GET", "/clients/" + encodeURIComponent(id) + "/timeline?limit=500").catch(() => ({ entries: [] }));
    app.append(h("section", {}, h("h3", {}, "Timeline"), timelineTable(tl.entries)));
  }
  refresh = () => draw();
  await draw();
}

async function loginPage() {
  refresh = null;
  closeStreams();
  const who = await api("GET", "/whoami").catch(() => ({}));
  const form = h("form", { class: "card", id: "login-form", novalidate: true },
    h("p", { class: "form-error", role: "alert", tabindex: "-1" }),
    who.admin ? h("p", { class: "notice" }, "This browser holds the admin token.") : null,
    field("token", "Admin token", { type: "password", autocomplete: "off", required: true },
      "printed by flmngr up the first time, and kept in <data>/admin-token"),
    h("div", { class: "actions" }, h("button", { class: "primary", type: "submit" }, "Use this token"),
      who.admin ? h("button", { type: "button", onclick: async () => { await api("POST", "/logout"); loginPage(); } }, "Forget it") : null));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await api("POST", "/login", { token: form.elements.token.value.trim() });
      connectEvents();
      announce("Signed in");
      location.hash = "#/";
    } catch (err) {
      showErrors(form, err);
    }
  });
  app.replaceChildren(h("h2", {}, "Admin token"), form);
}

async function route() {
  const hash = location.hash || "#/";
  if (!hash.startsWith("#/tasks/")) closeStreams();
  let m;
  if (hash === "#/" || hash === "#") await dashboard();
  else if (hash === "#/new") newTask();
  else if (hash === "#/login") await loginPage();
  else if ((m = hash.match(/^#\/tasks\/(.+)$/))) await taskPage(decodeURIComponent(m[1]));
  else if ((m = hash.match(/^#\/clients\/(.+)$/))) await clientPage(decodeURIComponent(m[1]));
  else app.replaceChildren(h("p", {}, "No such page. ", h("a", { href: "#/" }, "Back to the dashboard.")));
  app.focus();
}

window.addEventListener("hashchange", route);
connectEvents();
route();
