// forq's dashboard (docs/dashboard.md): plain ES module, no build step, no library. It talks to
// forq's JSON API only (docs/http.md) and writes every value with textContent, never as HTML.

const $ = (id) => document.getElementById(id);
const view = $("view");
const state = {
  mode: "on",           // on | read-only (GET /v1/ui)
  every: 5000,          // refresh interval, ms; 0: never
  timer: 0,
  generation: 0,        // the newest render; older ones are dropped
  pending: null,        // an action waiting for the token
};

// h("td", {class: "num"}, "12") -> <td class="num">12</td>; children are nodes or text.
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const fmt = (n) => (typeof n === "number" ? n.toLocaleString("en-US") : n ?? "–");
const when = (ms) => {
  const d = typeof ms === "number" && ms ? new Date(ms) : null; // a bad time is a dash, never a throw
  return d && !Number.isNaN(d.getTime()) ? d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC") : "–";
};
const enc = encodeURIComponent;

// How long ago (or how soon) a time is, as people say it: "just now", "42 s ago", "3 min ago",
// "in 2 h"; "" for a time that is not one.
function relative(ms) {
  if (typeof ms !== "number" || !ms || Number.isNaN(new Date(ms).getTime())) return "";
  const s = Math.round((Date.now() - ms) / 1000), a = Math.abs(s);
  if (a < 2) return "just now";
  const t = a < 90 ? `${a} s` : a < 5400 ? `${Math.round(a / 60)} min` : a < 172800 ? `${Math.round(a / 3600)} h` : `${fmt(Math.round(a / 86400))} days`;
  return s > 0 ? `${t} ago` : `in ${t}`;
}
// A time as its date and, beside it, how long ago: "2026-12-04 10:00:00 UTC 3 min ago".
const time_text = (ms) => {
  const rel = relative(ms);
  return rel ? [h("span", { class: "abs" }, when(ms)), " ", h("span", { class: "muted ago" }, rel)] : when(ms);
};

// A job's state as a badge of its own colour (style.css: .state-ready, ...).
const state_badge = (s) => h("span", { class: "badge state state-" + String(s ?? "unknown").replace(/[^a-z]/g, ""), "data-state": s ?? "" }, s ?? "–");

// A long value in a list: one line of at most preview_chars characters, a string as it is and
// anything else as its JSON text. The server already cut it to 300 bytes (docs/http.md) and says
// so in `truncated`; this cut holds whatever the server sent.
const preview_chars = 300;
function preview(v, cut) {
  if (v === undefined) return "–";
  let text = typeof v === "string" ? v : JSON.stringify(v);
  if (text.length > preview_chars) {
    text = text.slice(0, /[\ud800-\udbff]/.test(text[preview_chars - 1]) ? preview_chars - 1 : preview_chars);
    cut = true;
  }
  text = text.replace(/\s+/g, " ");
  return cut ? text + "…" : text;
}
const clip = (text) => h("div", { class: "clip", title: text }, text);

// A long value on the job page: whole up to long_chars characters and long_lines lines, else its
// beginning and a "Show all" button; the values shown whole are kept across refreshes.
const long_chars = 4000, long_lines = 40;
const shown_whole = new Set(); // "<job id>\n<field>"
function long_text(text, key) {
  // Cut after long_lines lines or long_chars characters, whichever comes first.
  let n = Math.min(text.length, long_chars);
  for (let i = 0, at = -1; i < long_lines; i++) {
    at = text.indexOf("\n", at + 1);
    if (at === -1 || at >= n) break;
    if (i === long_lines - 1) n = at;
  }
  if (n >= text.length || shown_whole.has(key)) return h("pre", {}, text);
  if (/[\ud800-\udbff]/.test(text[n - 1])) n--; // not half a character
  const pre = h("pre", { class: "cut" }, text.slice(0, n) + " …");
  const more = h("button", { type: "button", class: "show-all", onclick: () => {
    shown_whole.add(key);
    pre.textContent = text;
    pre.classList.remove("cut");
    more.remove();
  } }, `Show all (${fmt(text.length)} characters)`);
  return h("div", { class: "long" }, pre, more);
}

// A line above the page: text, or nodes (a link); never HTML.
function say(content, kind = "error") {
  const m = $("message");
  m.replaceChildren(...[content].flat().filter((x) => x !== "" && x !== null && x !== undefined));
  m.className = kind === "info" ? "info" : "";
  m.hidden = !m.childNodes.length;
}

class api_error extends Error {
  constructor(status, text) {
    super(text);
    this.status = status;
  }
}

// One API call: JSON in and out; the token (if given) as a bearer credential. Errors carry the
// API's own words.
async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const token = sessionStorage.getItem("forq-token");
  if (token) headers.Authorization = "Bearer " + token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "omit" });
  } catch (e) {
    throw new api_error(0, "forq did not answer (" + e.message + ")");
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) throw new api_error(res.status, (data && data.error) || text || res.statusText);
  const total = res.headers.get("X-Total-Count"); // a page of a longer list (GET /v1/queues)
  if (Array.isArray(data) && total !== null) data.total = Number(total);
  return data;
}

// An action that changes something: asks for the token on 401, then tries again once.
async function act(method, path, body, done) {
  try {
    const r = await api(method, path, body);
    if (done) say(done(r), "info");
    refresh();
    return r;
  } catch (e) {
    if (e.status === 401) {
      state.pending = { method, path, body, done };
      say(e.message);
      $("token").hidden = false;
      $("token-value").focus();
      return null;
    }
    say(e.message);
    return null;
  }
}

// A destructive action waits for a second click.
function confirm_then(text, run) {
  $("confirm-text").textContent = text;
  $("confirm").hidden = false;
  $("confirm-yes").onclick = () => {
    $("confirm").hidden = true;
    run();
  };
  $("confirm-no").onclick = () => ($("confirm").hidden = true);
}

const writable = () => state.mode !== "read-only";
// A button that changes something: none at all in read-only mode.
const button = (label, onclick, cls) => (writable() ? h("button", { type: "button", class: "act " + (cls || ""), onclick }, label) : null);

const svg_ns = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(svg_ns, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children.flat()) if (c) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

// A line for each series ({name, values, cls}) over the same minutes, scaled to the largest value;
// a missing value (null) breaks its line. Small ones for the overview, big ones (with the
// largest value and the time written, and each minute's figures on hover) for a queue. A series
// marked `quiet` (failures) is not drawn while it is all zero: no red line over the baseline.
function chart(all, { big = false, at = [], unit = (v) => fmt(v), label = "" } = {}) {
  const series = all.filter((s) => !s.quiet || s.values.some((v) => v));
  const w = big ? 600 : 100, top = big ? 14 : 1, bottom = big ? 104 : 19;
  const n = Math.max(0, ...all.map((s) => s.values.length));
  const max = Math.max(0, ...series.flatMap((s) => s.values.filter((v) => v !== null)));
  const scale = max > 0 ? max : 1;
  const x = (i) => (n > 1 ? (i * w) / (n - 1) : 0);
  const y = (v) => bottom - ((bottom - top) * v) / scale;
  const el = svg("svg", { class: big ? "chart" : "spark", viewBox: `0 0 ${w} ${big ? 120 : 20}`, preserveAspectRatio: "none", role: "img", "aria-label": label });
  if (big) el.append(svg("line", { x1: 0, x2: w, y1: bottom, y2: bottom, class: "axis" }));
  for (const s of series) {
    let run = [];
    const lines = [];
    s.values.forEach((v, i) => {
      if (v === null) { if (run.length) lines.push(run); run = []; }
      else run.push(`${x(i).toFixed(1)},${y(v).toFixed(1)}`);
    });
    if (run.length) lines.push(run);
    for (const pts of lines)
      el.append(pts.length === 1
        ? svg("circle", { cx: pts[0].split(",")[0], cy: pts[0].split(",")[1], r: big ? 2 : 1, class: s.cls })
        : svg("polyline", { points: pts.join(" "), class: s.cls }));
  }
  if (!big) return el;
  // Each minute's figures on hover: a thin column with a title.
  for (let i = 0; i < n; i++)
    el.append(svg("rect", { x: Math.max(0, x(i) - w / n / 2), y: 0, width: w / n, height: 120, class: "hover" },
      svg("title", {}, [new Date(at[i]).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }),
        ...all.map((s) => `${s.name}: ${s.values[i] === null ? "–" : unit(s.values[i])}`)].join("\n"))));
  return h("figure", { class: "chart" },
    h("figcaption", {}, label, " ", h("span", { class: "muted" }, `(largest ${unit(max)})`),
      ...all.map((s) => series.includes(s) ? h("span", { class: "key " + s.cls }, s.name)
        : h("span", { class: "key none muted" }, `${s.name}: none`))),
    el,
    h("div", { class: "chart-x muted" }, h("span", {}, `${n} min ago`), h("span", {}, "now")));
}

// A latency in ms as people read it: 0.38 ms, 2.1 ms, 45 ms, 2.5 s.
function ms(v) {
  if (v === null || v === undefined) return "–";
  if (v >= 1000) return `${(v / 1000).toLocaleString("en-US", { maximumFractionDigits: 1 })} s`;
  return `${v.toLocaleString("en-US", { maximumSignificantDigits: v < 1 ? 2 : v < 100 ? 2 : 3 })} ms`;
}

// A count of each whole minute: the current one, still being added to, is left out (its line
// would always drop at the end); latencies are estimates whatever the minute's size, so kept.
const whole = (m, f) => m.map((x, i) => (i === m.length - 1 ? null : f(x)));

// From a queue's minutes (oldest first, the last one still going): jobs done in the last whole
// minute, and the pick-up percentiles of the latest minute (of the last five) with any.
function recent(q) {
  const m = q.minutes || [];
  const whole = m.length > 1 ? m[m.length - 2] : null;
  const with_latency = m.slice(-5).reverse().find((x) => x.started > 0) || null;
  return { per_min: whole ? whole.done : null, p50: with_latency?.pickup_p50_ms ?? null, p99: with_latency?.pickup_p99_ms ?? null };
}

// The overview reads one page of queues (sorted by name, filtered by a part of the name), so a
// refresh costs Redis a page's worth however many queues there are.
const queues_view = { match: "", offset: 0 };
const queues_page = 100;

async function overview() {
  const [queues, workers] = await Promise.all([
    api("GET", `/v1/queues?match=${enc(queues_view.match)}&offset=${queues_view.offset}&limit=${queues_page}&minutes=60`),
    api("GET", "/v1/workers"),
  ]);
  const total = queues.total ?? queues.length;
  const rows = queues.map((q) => {
    const t = recent(q);
    const m = q.minutes || [];
    return h("tr", { "data-queue": q.queue },
      h("td", {}, h("a", { href: "#/queue/" + enc(q.queue) }, q.queue), " ",
        q.paused ? h("span", { class: "badge paused" }, "paused") : null),
      ...["ready", "active", "delayed", "dead", "completed"].map((k) =>
        h("td", { class: "num" + (k === "dead" && q.dead > 0 ? " bad" : ""), "data-field": k }, fmt(q[k]))),
      h("td", { class: "num" }, q.rate_limit ? `${fmt(q.rate_limit.max)} / ${fmt(q.rate_limit.per_ms)} ms` : "–"),
      h("td", { class: "num", "data-field": "per_min" }, t.per_min === null ? "–" : fmt(t.per_min)),
      h("td", { class: "spark-cell" }, chart([{ name: "done", values: whole(m, (x) => x.done), cls: "done" }], { label: `jobs done a minute in ${q.queue}` })),
      h("td", { class: "num", "data-field": "pickup" }, t.p50 === null ? "–" : `${ms(t.p50)} / ${ms(t.p99)}`),
      h("td", { class: "spark-cell" }, chart([
        { name: "p99", values: m.map((x) => x.pickup_p99_ms), cls: "p99" },
        { name: "p50", values: m.map((x) => x.pickup_p50_ms), cls: "p50" }], { label: `pick-up latency in ${q.queue}` })),
      h("td", {}, button(q.paused ? "Resume" : "Pause", () =>
        act("POST", `/v1/queues/${enc(q.queue)}/${q.paused ? "resume" : "pause"}`, undefined,
          () => `queue ${q.queue} ${q.paused ? "resumed" : "paused"}`))));
  });
  const filter = h("form", { id: "queue-filter", class: "inline", onsubmit: (e) => {
      e.preventDefault();
      Object.assign(queues_view, { match: $("queue-match").value.trim(), offset: 0 });
      refresh();
    } },
    h("input", { id: "queue-match", placeholder: "Queues whose name contains…", value: queues_view.match, "aria-label": "Filter queues by name", spellcheck: "false" }),
    h("button", { type: "submit" }, "Filter"));
  return [
    h("h1", {}, "Queues ", h("span", { class: "muted", id: "queue-total" }, `(${fmt(total)}${queues_view.match ? " matching" : ""})`)),
    h("p", { class: "muted", id: "alive" }, h("a", { href: "#/workers" }, `${fmt(workers.length)} worker${workers.length === 1 ? "" : "s"} alive`),
      `, running ${fmt(workers.reduce((n, w) => n + (w.queues || []).reduce((k, x) => k + (x.running || 0), 0), 0))} jobs. Figures by the minute are added by each worker every 10 s.`),
    total > queues_page || queues_view.match ? filter : null,
    queues.length
      ? h("div", { class: "table-wrap" }, h("table", { id: "queues" },
          h("thead", {}, h("tr", {}, h("th", {}, "Queue"), ...["Ready", "Active", "Delayed", "Dead", "Completed", "Rate limit"].map((x) => h("th", { class: "num" }, x)),
            h("th", { class: "num", title: "jobs done in the last whole minute" }, "Jobs/min"), h("th", {}, "Last hour"),
            h("th", { class: "num", title: "pick-up latency (ready to started) of the latest minute with any" }, "Pick-up p50 / p99"), h("th", {}, "Last hour"), h("th", {}, ""))),
          h("tbody", {}, rows)))
      : h("p", { class: "muted" }, queues_view.match ? "No queue's name contains that." : "No queues yet: enqueue a job or start a worker."),
    total > queues_page
      ? h("div", { class: "actions" },
          h("button", { type: "button", disabled: queues_view.offset === 0, onclick: () => { queues_view.offset = Math.max(0, queues_view.offset - queues_page); refresh(); } }, "Previous"),
          h("span", { class: "muted" }, `${fmt(queues_view.offset + 1)}–${fmt(queues_view.offset + queues.length)} of ${fmt(total)}`),
          h("button", { type: "button", disabled: queues_view.offset + queues_page >= total, onclick: () => { queues_view.offset += queues_page; refresh(); } }, "Next"))
      : null,
  ];
}

// The queue page's list (ready, active, delayed, dead, cancelled or completed, 50 a page) and its search, kept while the
// person stays on the queue.
const lists = { queue: "", list: "ready", offset: 0, search: "", found: null };
const page_size = 50;

function jobs_table(jobs, list) {
  const pick = list === "dead" && writable();
  const cancellable = ["ready", "active", "delayed"].includes(list) && writable();
  const [time_label, time_field] = { dead: ["Died", "finished_ms"], delayed: ["Runs", "run_at_ms"], completed: ["Finished", "finished_ms"],
    cancelled: ["Cancelled", "finished_ms"],
    ready: ["Queued", "queued_ms"], active: ["Queued", "queued_ms"] }[list] || ["When", null];
  // A long value as one line: its preview (cut by the server too: `truncated` names what was cut).
  const text = (j, k) => preview(j[k], j.truncated === true || (Array.isArray(j.truncated) && j.truncated.includes(k)));
  const payload = ["Payload", (j) => clip(text(j, "payload"))];
  const why = (j) => clip(text(j, j.reason !== undefined ? "reason" : "last_error"));
  // The columns after the time: [heading, a job's cell, class].
  const more = {
    ready: [["Priority", (j) => String(j.priority ?? 0), "num"], payload],
    active: [["Worker (lease renewed)", (j) => `${j.consumer ?? "–"} (${fmt(Math.round((j.lease_idle_ms ?? 0) / 1000))} s ago)`],
      ["Progress", (j) => j.progress === undefined ? "–" : clip(JSON.stringify(j.progress))], payload],
    delayed: [payload],
    dead: [["Why", why], payload],
    completed: [["Result", (j) => clip(text(j, "result"))]],
    cancelled: [["By", (j) => j.cancelled_by ?? "–"], ["Why", (j) => clip(j.cancel_reason ?? "")], payload],
  }[list] || [["Result, error or payload", (j) => j.state === "completed" ? clip(text(j, "result"))
    : j.reason !== undefined || j.last_error !== undefined ? why(j) : clip(text(j, "payload"))]];
  // Select all: the dead jobs on this page.
  const all = pick ? h("input", { type: "checkbox", id: "pick-all", "aria-label": "select every dead job on this page",
    onchange: (e) => { for (const box of view.querySelectorAll("input.pick")) box.checked = e.target.checked; } }) : null;
  return h("div", { class: "table-wrap" }, h("table", { id: "jobs", class: "jobs", "data-list": list, onchange: (e) => { if (e.target.classList.contains("pick")) sync_pick_all(); } },
    h("thead", {}, h("tr", {}, pick ? h("th", { class: "pick" }, all) : null, h("th", {}, "Job"), h("th", {}, "State"), h("th", {}, "Handler"),
      h("th", { class: "num" }, "Attempts"), h("th", {}, time_label), ...more.map(([label, , cls]) => h("th", { class: cls }, label)),
      cancellable ? h("th", {}, "") : null)),
    h("tbody", {}, jobs.map((j) => h("tr", { "data-id": j.id },
      pick ? h("td", { class: "pick" }, h("input", { type: "checkbox", class: "pick", value: j.id, "aria-label": "select " + j.id })) : null,
      h("td", {}, h("a", { class: "job-id", href: job_href(j.id, j.queue), title: j.id }, j.id)),
      h("td", {}, state_badge(j.state)),
      h("td", {}, j.handler ?? "–"),
      h("td", { class: "num" }, fmt(j.attempts)),
      h("td", {}, time_text(time_field ? j[time_field] : j.finished_ms ?? j.run_at_ms ?? j.queued_ms)),
      ...more.map(([, cell, cls]) => h("td", { class: cls }, cell(j))),
      cancellable ? h("td", {}, cancel_button(j)) : null)))));
}

// Cancel a waiting or running job (docs/job-control.md), after a confirmation.
function cancel_button(j) {
  return button("Cancel", () => confirm_then(`Cancel job ${j.id}? ${j.state === "active" ? "It is running: its worker is told to stop." : "It will not run."}`,
    () => act("POST", `/v1/queues/${enc(j.queue)}/jobs/${enc(j.id)}/cancel`, undefined,
      (r) => r.outcome === "cancelled" ? `job ${j.id} cancelled` : r.outcome === "terminal" ? `job ${j.id} had already ended` : `job ${j.id} is told to stop`)), "danger");
}

// The select-all box follows the boxes: ticked when all are, half when some are.
function sync_pick_all() {
  const all = $("pick-all");
  if (!all) return;
  const boxes = [...view.querySelectorAll("input.pick")];
  const n = boxes.filter((b) => b.checked).length;
  all.checked = boxes.length > 0 && n === boxes.length;
  all.indeterminate = n > 0 && n < boxes.length;
}

async function queue_page(name) {
  if (lists.queue !== name) Object.assign(lists, { queue: name, list: "ready", offset: 0, search: "", found: null });
  const base = `/v1/queues/${enc(name)}`;
  const [q, jobs, schedules] = await Promise.all([
    api("GET", `${base}?minutes=60`),
    api("GET", `${base}/jobs?state=${lists.list}&offset=${lists.offset}&limit=${page_size}`),
    api("GET", `${base}/schedules`),
  ]);
  const chosen = () => [...view.querySelectorAll("input.pick:checked")].map((x) => x.value);
  const bulk = (what, ids) => {
    const n = ids.length ? ids.length : q.dead;
    const words = `${what === "retry" ? "Retry" : "Purge"} ${ids.length ? n : "all " + fmt(n)} dead job${n === 1 ? "" : "s"} of ${name}?`;
    const run = () => act(what === "retry" ? "POST" : "DELETE", what === "retry" ? `${base}/dead/retry` : `${base}/dead`,
      ids.length ? { ids } : undefined, (r) => `${what === "retry" ? "retried" : "purged"} ${r.retried ?? r.purged} job(s)`);
    if (what === "purge" || !ids.length) confirm_then(words, run);
    else run();
  };
  const tab = (list, label) => h("button", { type: "button", class: lists.list === list ? "tab here" : "tab", "data-tab": list,
    onclick: () => { Object.assign(lists, { list, offset: 0 }); refresh(); } }, `${label} (${fmt(q[list] ?? 0)})`);
  const count = q[lists.list] ?? 0;
  const rate = writable()
    ? h("form", { id: "rate", class: "inline", onsubmit: (e) => {
        e.preventDefault();
        const max = Number($("rate-max").value), per = Number($("rate-per").value || 1000);
        act("PUT", `${base}/rate_limit`, { max, per_ms: per }, () => `rate limit of ${name}: ${max} per ${per} ms`);
      } },
      h("label", { for: "rate-max" }, "Rate limit "),
      h("input", { id: "rate-max", type: "number", min: 1, max: 1000000, placeholder: "jobs", value: q.rate_limit?.max ?? "", size: 6 }),
      " per ", h("input", { id: "rate-per", type: "number", min: 1, max: 86400000, placeholder: "ms", value: q.rate_limit?.per_ms ?? 1000, size: 8 }), " ms ",
      h("button", { type: "submit" }, "Set"),
      q.rate_limit ? h("button", { type: "button", class: "act", onclick: () => act("DELETE", `${base}/rate_limit`, undefined, () => `rate limit of ${name} removed`) }, "Clear") : null)
    : q.rate_limit ? h("span", { class: "muted" }, `rate limit ${fmt(q.rate_limit.max)} per ${fmt(q.rate_limit.per_ms)} ms`) : null;
  return [
    h("h1", {}, "Queue ", name, " ", q.paused ? h("span", { class: "badge paused" }, "paused") : null),
    h("div", { class: "cards" }, ["ready", "active", "delayed", "dead", "cancelled", "completed", "retried", "stalled"].map((k) =>
      h("div", { class: "card state-" + k }, h("div", { class: "muted" }, k), h("div", { class: "n", "data-field": k }, fmt(q[k]))))),
    h("div", { class: "charts", id: "charts" },
      chart([{ name: "done", values: whole(q.minutes || [], (x) => x.done), cls: "done" },
        { name: "failed", values: whole(q.minutes || [], (x) => x.failed), cls: "failed", quiet: true }],
      { big: true, at: (q.minutes || []).map((x) => x.at_ms), label: "Jobs a minute, last hour (whole minutes)" }),
      chart([{ name: "p99", values: (q.minutes || []).map((x) => x.pickup_p99_ms), cls: "p99" },
        { name: "p50", values: (q.minutes || []).map((x) => x.pickup_p50_ms), cls: "p50" }],
      { big: true, at: (q.minutes || []).map((x) => x.at_ms), unit: ms, label: "Pick-up latency, last hour" })),
    h("div", { class: "actions" },
      button(q.paused ? "Resume" : "Pause", () => act("POST", `${base}/${q.paused ? "resume" : "pause"}`, undefined,
        () => `queue ${name} ${q.paused ? "resumed" : "paused"}`)),
      rate),
    h("form", { id: "search", class: "inline", onsubmit: async (e) => {
        e.preventDefault();
        lists.search = $("search-text").value.trim();
        lists.found = null;
        if (lists.search) {
          try {
            lists.found = await api("GET", `${base}/search?q=${enc(lists.search)}`);
          } catch (err) {
            say(err.message);
          }
        }
        refresh();
      } },
      h("input", { id: "search-text", placeholder: "Search dead, delayed and recent jobs", value: lists.search, "aria-label": "Search text" }),
      h("button", { type: "submit" }, "Search")),
    lists.found
      ? [h("h2", {}, `Jobs containing “${lists.search}” (${lists.found.length}${lists.found.length >= 50 ? ", the first 50" : ""}; the first 1,000 of each list are searched)`),
         lists.found.length ? jobs_table(lists.found, "found") : h("p", { class: "muted", id: "nothing-found" }, "None.")]
      : null,
    h("div", { class: "actions tabs" }, tab("ready", "Ready"), tab("active", "Active"), tab("delayed", "Delayed"), tab("dead", "Dead"), tab("cancelled", "Cancelled"), tab("completed", "Completed")),
    lists.list === "dead" && jobs.length
      ? h("div", { class: "actions" },
          button("Retry selected", () => { const ids = chosen(); if (ids.length) bulk("retry", ids); else say("select dead jobs first"); }),
          button("Retry all", () => bulk("retry", [])),
          button("Purge selected", () => { const ids = chosen(); if (ids.length) bulk("purge", ids); else say("select dead jobs first"); }, "danger"),
          button("Purge all", () => bulk("purge", []), "danger"))
      : null,
    lists.list === "dead" && jobs.length && writable()
      ? h("form", { id: "dead-match", class: "inline", onsubmit: (e) => e.preventDefault() },
          h("input", { id: "dead-match-text", placeholder: "Dead jobs containing…", "aria-label": "Dead jobs containing", spellcheck: "false" }),
          ...[["retry", "Retry matching", ""], ["purge", "Purge matching", "danger"]].map(([what, label, cls]) =>
            h("button", { type: "button", class: "act " + cls, onclick: () => {
              const text = $("dead-match-text").value.trim();
              if (!text) return say("type what the dead jobs to take contain");
              confirm_then(`${what === "retry" ? "Retry" : "Purge"} every dead job of ${name} whose id, handler, payload or error contains “${text}”?`,
                () => act(what === "retry" ? "POST" : "DELETE", what === "retry" ? `${base}/dead/retry` : `${base}/dead`, { match: text },
                  (r) => `${what === "retry" ? "retried" : "purged"} ${r.retried ?? r.purged} job(s) (${r.matched} matched)`));
            } }, label)))
      : null,
    jobs.length ? jobs_table(jobs, lists.list) : h("p", { class: "muted" }, `No ${lists.list} jobs${lists.list === "completed" ? " kept" : ""}.`),
    jobs.length || lists.offset
      ? h("div", { class: "actions" },
          h("button", { type: "button", disabled: lists.offset === 0, onclick: () => { lists.offset = Math.max(0, lists.offset - page_size); refresh(); } }, "Previous"),
          h("span", { class: "muted" }, `${fmt(lists.offset + 1)}–${fmt(lists.offset + jobs.length)}${lists.list === "completed" ? "" : " of " + fmt(count)}`),
          h("button", { type: "button", disabled: jobs.length < page_size || ((lists.list === "ready" || lists.list === "active") && lists.offset + 2 * page_size > 10000), onclick: () => { lists.offset += page_size; refresh(); } }, "Next"))
      : null,
    h("h2", {}, "Schedules"),
    schedules_table(schedules),
    h("h2", {}, "Events, live"),
    events_list(name, (q.events ?? 0) > 0),
  ];
}

// The queue page's live events (docs/job-control.md, "Events"): one EventSource while the page
// shows a queue whose events are on; the newest 50 kept across the page's refreshes, and each
// new one drawn into the list in place. A reconnect resumes after the last one (Last-Event-ID).
const feed = { queue: null, source: null, items: [] };

function close_feed() {
  if (feed.source) feed.source.close();
  Object.assign(feed, { queue: null, source: null, items: [] });
}

function event_row(e) {
  const cut = (t) => (String(t).length > 120 ? String(t).slice(0, 119) + "…" : String(t));
  const detail = e.progress !== undefined ? "progress " + cut(JSON.stringify(e.progress))
    : e.result !== undefined ? "result " + cut(JSON.stringify(e.result))
    : e.reason !== undefined ? cut(e.reason) + (e.next ? ` (then ${e.next})` : "")
    : e.run_at_ms !== undefined ? `runs ${when(e.run_at_ms)} (${relative(e.run_at_ms)})`
    : e.attempt !== undefined ? "attempt " + e.attempt
    : e.stalls !== undefined ? `stalled ${e.stalls} time(s)` : "";
  return h("li", { "data-event": e.event },
    h("span", { class: "muted" }, new Date(e.at_ms).toISOString().slice(11, 23), " "),
    h("span", { class: "badge state state-" + e.event }, e.event), " ",
    h("a", { class: "job-id", href: job_href(e.id, feed.queue), title: e.id }, e.id), " ",
    h("span", { class: "muted" }, by_text(e), detail));
}
const by_text = (e) => (e.by !== undefined ? `by ${e.by}: ` : "");

function events_list(name, on) {
  if (!on) {
    if (feed.queue === name) close_feed();
    return h("p", { class: "muted", id: "events-off" }, `Events are off for this queue (forq events ${name} --on turns them on).`);
  }
  if (feed.queue !== name) {
    close_feed();
    feed.queue = name;
    feed.source = new EventSource(`/v1/queues/${enc(name)}/events?last=20`);
    feed.source.onmessage = (m) => {
      let e;
      try { e = JSON.parse(m.data); } catch { return; }
      feed.items.unshift(e);
      feed.items.length = Math.min(feed.items.length, 50);
      const list = $("events");
      if (list) {
        list.prepend(event_row(e));
        while (list.children.length > 50) list.lastChild.remove();
      }
    };
  }
  return h("ol", { id: "events", class: "events", reversed: true }, feed.items.map(event_row));
}

function schedules_table(list) {
  if (!list.length) return h("p", { class: "muted" }, "No schedules (forq schedule add, docs/schedules.md).");
  return h("div", { class: "table-wrap" }, h("table", { class: "schedules" },
    h("thead", {}, h("tr", {}, ["Queue", "Name", "When", "State", "Next", "Last", "Runs", "Skipped", ""].map((x) => h("th", {}, x)))),
    h("tbody", {}, list.map((s) => {
      const at = `/v1/queues/${enc(s.queue)}/schedules/${enc(s.name)}`;
      return h("tr", { "data-schedule": s.name },
        h("td", {}, h("a", { href: "#/queue/" + enc(s.queue) }, s.queue)),
        h("td", {}, s.name),
        h("td", {}, s.cron ? s.cron + (s.tz ? " " + s.tz : "") : `every ${fmt(s.every_ms / 1000)} s`),
        h("td", {}, h("span", { class: "badge " + (s.state === "paused" ? "paused" : "ok") }, s.state)),
        h("td", {}, time_text(s.next_ms)),
        h("td", {}, time_text(s.last_ms)),
        h("td", { class: "num" }, fmt(s.runs)),
        h("td", { class: "num" }, fmt(s.skipped)),
        h("td", {}, button(s.state === "paused" ? "Resume" : "Pause", () => act("POST", `${at}/${s.state === "paused" ? "resume" : "pause"}`, undefined, () => `schedule ${s.name} ${s.state === "paused" ? "resumed" : "paused"}`)),
          " ", button("Run now", () => act("POST", `${at}/run`, undefined,
            (r) => ["job ", h("a", { id: "made-job", href: "#/job/" + enc(r.id) }, r.id), " enqueued"]))));
    }))));
}

async function schedules_page() {
  const queues = await api("GET", "/v1/queues");
  // Only the queues that have any (the overview's figures count them): not a request per queue.
  const some = queues.filter((q) => q.schedules > 0);
  const all = (await Promise.all(some.map((q) => api("GET", `/v1/queues/${enc(q.queue)}/schedules`)))).flat();
  return [h("h1", {}, "Schedules"), schedules_table(all)];
}

// Every worker process that beat in the last 30 s (GET /v1/workers): each says so every 10 s.
async function workers_page() {
  const list = await api("GET", "/v1/workers");
  const ago = (ms) => `${fmt(Math.max(0, Math.round((Date.now() - ms) / 1000)))} s ago`;
  const since = (ms) => {
    const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    return s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : s < 172800 ? `${Math.round(s / 3600)} h` : `${Math.round(s / 86400)} days`;
  };
  if (!list.length) return [h("h1", {}, "Workers"), h("p", { class: "muted", id: "no-workers" }, "No worker has said it is alive in the last 30 s.")];
  return [
    h("h1", {}, "Workers ", h("span", { class: "muted" }, `(${fmt(list.length)})`)),
    h("div", { class: "table-wrap" }, h("table", { id: "workers" },
      h("thead", {}, h("tr", {}, h("th", {}, "Host"), h("th", { class: "num" }, "Pid"), h("th", { class: "num" }, "Slot"), h("th", {}, "State"), h("th", {}, "Redis"),
        h("th", {}, "Queues (running / done)"), h("th", { class: "num" }, "Running"), h("th", {}, "Jobs running, for"), h("th", {}, "Up"), h("th", {}, "Last beat"), h("th", {}, "Version"))),
      h("tbody", {}, list.map((w) => {
        const qs = w.queues || [];
        const running = qs.reduce((n, q) => n + (q.running || 0), 0);
        return h("tr", { "data-worker": w.name },
          h("td", {}, w.host),
          h("td", { class: "num", "data-field": "pid" }, String(w.pid)),
          h("td", { class: "num" }, String(w.slot)),
          h("td", {}, h("span", { class: "badge " + (w.state === "running" ? "ok" : "paused") }, w.state)),
          h("td", {}, h("span", { class: "badge " + (w.redis === "connected" ? "ok" : "dead") }, w.redis)),
          h("td", { class: "wrap" }, qs.map((q, i) => [i ? ", " : "", h("a", { href: "#/queue/" + enc(q.queue) }, q.queue), ` ${fmt(q.running)} / ${fmt(q.done)}`])),
          h("td", { class: "num" }, `${fmt(running)} of ${fmt(w.concurrency)}`),
          h("td", { class: "wrap", "data-field": "jobs" }, qs.flatMap((q) => (q.jobs || []).map((j) =>
            h("div", {}, h("a", { class: "job-id", href: job_href(j.id, q.queue), title: j.id }, j.id), ` ${since(j.started_ms)}`)))),
          h("td", {}, since(w.started_ms)),
          h("td", {}, ago(w.beat_ms)),
          h("td", {}, w.version));
      })))),
    h("p", { class: "muted" }, "Each worker's ten oldest running jobs of each queue, as of its last beat (every 10 s); all of them are on the queues' Active lists."),
  ];
}

// The job page's labels for the API's keys (GET /v1/jobs/{id}); a key not here is shown as it is.
const job_labels = {
  queue: "Queue", id: "Id", state: "State", handler: "Handler", payload: "Payload", attempts: "Attempts",
  priority: "Priority", max_attempts: "Attempts allowed", retry: "Retry policy", result: "Result",
  last_error: "Last error", reason: "Why it died", errors: "Failed attempts", run_at_ms: "Runs at",
  finished_ms: "Finished at", queued_ms: "Queued at", consumer: "Held by worker", lease_idle_ms: "Lease renewed",
  progress: "Progress", waitable: "Waitable", cancelled_by: "Cancelled by", cancel_reason: "Why it was cancelled",
  cancel_requested: "Cancel asked for",
  fields: "Other fields",
};

// A job's page: #/job/ID (any queue: the Find box), or #/job/QUEUE/ID from a list, which knows
// the queue, so the lookup reads that queue alone (GET /v1/jobs/{id}?queue=Q).
function job_href(id, queue) {
  return "#/job/" + (queue ? enc(queue) + "/" : "") + enc(id);
}

async function job_page(id, queue) {
  let j;
  try {
    j = await api("GET", "/v1/jobs/" + enc(id) + (queue ? "?queue=" + enc(queue) : ""));
  } catch (e) {
    if (e.status === 404) return [h("h1", {}, "Job ", id), h("p", { id: "not-found" }, `No queue knows a job ${id}.`)];
    throw e;
  }
  const rows = [];
  for (const [k, v] of Object.entries(j)) {
    const label = k === "finished_ms" && j.state === "dead" ? "Died at"
      : k === "finished_ms" && j.state === "cancelled" ? "Cancelled at" : job_labels[k] ?? k;
    let value;
    if (k === "errors" && Array.isArray(v)) { // every failed attempt's error, oldest first
      value = h("table", { class: "errors" },
        h("thead", {}, h("tr", {}, h("th", { class: "num" }, "Attempt"), h("th", {}, "When"), h("th", {}, "Error"))),
        h("tbody", {}, v.map((x) => (x !== null && typeof x === "object" ? x : { error: JSON.stringify(x) })).map((e, i) =>
          h("tr", {}, h("td", { class: "num" }, typeof e.attempt === "number" ? fmt(e.attempt) : "–"), h("td", {}, time_text(e.at_ms)),
            h("td", { class: "wrap" }, long_text(String(e.error ?? ""), `${j.id}\nerrors\n${i}`))))));
    } else if (k === "queue") {
      value = h("a", { href: "#/queue/" + enc(v) }, v);
    } else if (k === "state") {
      value = state_badge(v);
    } else if (k === "lease_idle_ms" && typeof v === "number") {
      value = `${fmt(Math.round(v / 1000))} s ago`;
    } else if (k.endsWith("_ms") && typeof v === "number") {
      value = time_text(v);
    } else if (typeof v === "object" && v !== null) {
      value = long_text(JSON.stringify(v, null, 2), `${j.id}\n${k}`);
    } else if (typeof v === "boolean") {
      value = v ? "yes" : "no";
    } else if (k === "payload" || k === "result" || k === "last_error" || k === "reason" || k === "cancel_reason") {
      value = long_text(String(v), `${j.id}\n${k}`);
    } else {
      value = String(v);
    }
    rows.push(h("dt", {}, label), h("dd", { "data-field": k }, value));
  }
  const base = `/v1/queues/${enc(j.queue)}/dead`;
  return [
    h("h1", {}, "Job ", j.id, " ", state_badge(j.state)),
    j.state === "dead" ? h("div", { class: "actions" },
      button("Retry", () => act("POST", `${base}/retry`, { ids: [j.id] }, () => `job ${j.id} retried`)),
      button("Delete", () => confirm_then(`Delete dead job ${j.id} for good?`, () => act("DELETE", base, { ids: [j.id] }, () => `job ${j.id} deleted`)), "danger")) : null,
    ["ready", "delayed", "active"].includes(j.state) ? h("div", { class: "actions" }, cancel_button(j)) : null,
    h("div", { class: "card" }, h("dl", { id: "job" }, rows)),
  ];
}

// The page for the location's hash, drawn in one step (no jump while it loads). The hash holds a
// queue's name or a job's id percent-encoded once (encodeURIComponent): it is decoded once here,
// and each page encodes it once again for the API's path.
async function render(generation) {
  const [, page, arg] = location.hash.match(/^#\/([^/]*)\/?(.*)$/) || [null, "", ""];
  for (const a of document.querySelectorAll("nav a"))
    a.classList.toggle("here", a.dataset.nav === (page === "schedules" || page === "workers" ? page : "overview") && page !== "job");
  let nodes, name = arg, in_queue = "";
  try {
    try {
      // A job's address may name its queue first: #/job/QUEUE/ID (each part encoded once).
      const cut = page === "job" ? (arg || "").indexOf("/") : -1;
      if (cut >= 0) in_queue = decodeURIComponent(arg.slice(0, cut));
      name = decodeURIComponent(cut >= 0 ? arg.slice(cut + 1) : arg || "");
    } catch {
      throw new Error(`The address's "${arg}" is not percent-encoded text (a "%" must be followed by two hex digits: "%25" for "%" itself).`);
    }
    if (!(page === "queue" && name === feed.queue)) close_feed(); // another page: the stream ends
    if (page === "queue" && name) nodes = await queue_page(name);
    else if (page === "job" && name) nodes = await job_page(name, in_queue);
    else if (page === "schedules") nodes = await schedules_page();
    else if (page === "workers") nodes = await workers_page();
    else nodes = await overview();
  } catch (e) {
    if (generation !== state.generation) return;
    // In place of the page, never over the previous one: its figures are not this page's.
    const title = page === "queue" && name ? ["Queue ", name] : page === "job" && name ? ["Job ", name]
      : page === "schedules" ? "Schedules" : page === "workers" ? "Workers" : "Queues";
    view.replaceChildren(h("h1", {}, title),
      h("p", { id: "page-error", class: "page-error", role: "alert" }, e.message),
      h("p", {}, h("button", { type: "button", onclick: () => refresh() }, "Try again")));
    $("updated").textContent = "failed " + new Date().toLocaleTimeString();
    return;
  }
  if (generation !== state.generation) return; // a newer page or refresh is on its way
  // Keep what the person selected across a refresh.
  const picked = new Set([...view.querySelectorAll("input.pick:checked")].map((x) => x.value));
  // And what they are typing: the field keeps its text, its focus and its cursor.
  const typing = view.contains(document.activeElement) && document.activeElement.tagName === "INPUT" && document.activeElement.id
    ? { id: document.activeElement.id, value: document.activeElement.value, from: document.activeElement.selectionStart, to: document.activeElement.selectionEnd }
    : null;
  view.replaceChildren(...nodes.flat().filter(Boolean));
  for (const box of view.querySelectorAll("input.pick")) box.checked = picked.has(box.value);
  sync_pick_all();
  const field = typing && $(typing.id);
  if (field && field.tagName === "INPUT") {
    field.value = typing.value;
    field.focus();
    if (typing.from !== null) field.setSelectionRange(typing.from, typing.to);
  }
  $("updated").textContent = "updated " + new Date().toLocaleTimeString();
}

// One refresh loop: a render that a newer one overtook draws nothing and schedules nothing.
function refresh() {
  clearTimeout(state.timer);
  const generation = ++state.generation;
  render(generation).finally(() => {
    if (generation !== state.generation) return;
    if (state.every > 0 && !document.hidden) state.timer = setTimeout(refresh, state.every);
  });
}

async function start() {
  try {
    const ui = await api("GET", "/v1/ui");
    state.mode = ui.mode;
    if (ui.mode === "read-only") {
      $("mode").textContent = "read-only";
      $("mode").hidden = false;
    }
  } catch (e) {
    say(e.message);
  }
  const saved = Number(localStorage.getItem("forq-every"));
  if (!Number.isNaN(saved) && localStorage.getItem("forq-every") !== null) {
    state.every = saved;
    $("every").value = String(saved);
  }
  $("every").addEventListener("change", (e) => {
    state.every = Number(e.target.value);
    localStorage.setItem("forq-every", String(state.every));
    refresh();
  });
  $("find").addEventListener("submit", (e) => {
    e.preventDefault();
    const id = $("find-id").value.trim();
    if (id) location.hash = "#/job/" + enc(id);
  });
  $("token").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem("forq-token", $("token-value").value);
    $("token-value").value = "";
    $("token").hidden = true;
    const p = state.pending;
    state.pending = null;
    if (p) act(p.method, p.path, p.body, p.done);
  });
  $("token-cancel").addEventListener("click", () => {
    $("token").hidden = true;
    state.pending = null;
  });
  window.addEventListener("hashchange", () => {
    say("");
    refresh();
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) refresh();
  });
  refresh();
}

start();
