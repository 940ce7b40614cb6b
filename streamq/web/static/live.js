// The Live page: a --follow query whose new rows arrive as Server-Sent Events, with
// `query --follow`'s streaming options (window, key, emit, grace, dedup, limit). Rows are
// drawn once per animation frame whatever their rate, so thousands a second stay smooth.
// A window's result carries window_start/window_end and a `result` column: an update
// (emit changes) replaces that window's rows in place; the final result is marked final.
import { $, postJSON } from "./api.js";
import { barChart } from "./chart.js";
import { SqlEditor } from "./editor.js";
import { Grid } from "./grid.js";

const KEEP_ROWS = 100_000; // rows the page holds; older ones leave the grid
const CHART_SECONDS = 60;
// The form's fields, as `query --follow`'s flags (--window, --window-key, ...).
const OPTIONS = { window: "live-window", window_key: "live-window-key", emit: "live-emit", grace: "live-grace", dedup: "live-dedup", limit: "live-limit" };

export class LivePage {
  constructor() {
    this.editor = new SqlEditor($("live-sql"), () => this.start());
    this.grid = new Grid($("live-grid"), { maxRows: KEEP_ROWS });
    this.source = null;
    this.stream = null; // the open stream's id
    this.windowed = null; // {start, end}: the window columns' indices, while following a window
    this.paused = false;
    this.waiting = []; // batches received, not yet drawn
    this.reset();
    $("live-start").addEventListener("click", () => this.start());
    $("live-stop").addEventListener("click", () => this.end());
    $("live-pause").addEventListener("click", () => this.togglePause());
    $("live-clear").addEventListener("click", () => this.clear());
    for (const id of Object.values(OPTIONS)) {
      $(id).addEventListener("keydown", (e) => e.key === "Enter" && this.start());
    }
    setInterval(() => this.tick(), 1000);
  }

  reset() {
    this.received = 0;
    this.rendered = 0;
    this.suppressed = 0;
    this.perSecond = new Array(CHART_SECONDS).fill(0);
    this.thisSecond = 0;
  }

  options() {
    const chosen = {};
    for (const [name, id] of Object.entries(OPTIONS)) {
      const value = $(id).value.trim();
      if (value) chosen[name] = value;
    }
    return chosen;
  }

  async start() {
    this.close();
    const sql = this.editor.value.trim();
    if (!sql) return;
    $("live-error").hidden = true;
    this.status("starting…");
    const reply = await postJSON("/api/live", { sql, ...this.options() });
    if (reply.error) {
      $("live-error").textContent = reply.error; // query --follow's one line, in place
      $("live-error").hidden = false;
      this.status("");
      return;
    }
    this.clear();
    this.windowed = reply.window ? { start: reply.columns.indexOf("window_start"), end: reply.columns.indexOf("window_end") } : null;
    this.grid.setColumns(this.windowed ? [...reply.columns, "result"] : reply.columns);
    const what = reply.window ? `, ${reply.window}${reply.emit === "changes" ? ", emitting changes" : ""}` : "";
    this.status(`following ${reply.tables.join(", ")}${what}`, "status live");
    const source = new EventSource(`/api/live/${reply.id}`);
    this.source = source;
    this.stream = reply.id;
    source.addEventListener("rows", (e) => this.take(JSON.parse(e.data)));
    source.addEventListener("end", (e) => this.close(JSON.parse(e.data).message));
    source.onerror = () => {
      if (this.source === source) this.close("the connection to the console was lost");
    };
    $("live-stop").disabled = $("live-pause").disabled = false;
  }

  // Stop: the input ends as Ctrl-C ends `query --follow`; open windows come out, final, then "end".
  async end() {
    const stream = this.stream;
    if (!stream) return;
    $("live-stop").disabled = true;
    this.status("ending…");
    const reply = await postJSON(`/api/live/${stream}/end`, {});
    if (reply.error && this.stream === stream) this.close(reply.error); // not a stream started since
  }

  close(message) {
    if (this.source) {
      this.source.close();
      this.source = null;
      this.stream = null;
    }
    $("live-stop").disabled = $("live-pause").disabled = true;
    if (message) this.status(message, "status");
  }

  take(batch) {
    this.received += batch.rows.length;
    this.thisSecond += batch.rows.length;
    for (const s of batch.suppressed) this.suppressed += s.suppressed;
    this.stats = batch;
    if (this.windowed) this.waiting.push(batch);
    else {
      for (const row of batch.rows) this.waiting.push(row);
      if (this.waiting.length > KEEP_ROWS) this.waiting.splice(0, this.waiting.length - KEEP_ROWS);
    }
    if (!this.paused) this.draw();
    else this.count();
  }

  draw() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = null;
      if (this.paused || !this.waiting.length) return;
      const waiting = this.waiting;
      this.waiting = [];
      if (this.windowed) for (const batch of waiting) this.drawWindows(batch);
      else {
        this.grid.append(waiting);
        this.rendered += waiting.length;
      }
      this.count();
    });
  }

  // One batch of window results, step by step: within a step each window's result is whole.
  drawWindows(batch) {
    const { start, end } = this.windowed;
    let at = 0;
    for (const size of batch.steps) {
      const results = new Map(); // "key|start|end" -> the window's rows
      const bounds = new Map(); // key -> [[start, end, id]] (a session may swallow older ones)
      for (let i = at; i < at + size; i++) {
        const row = batch.rows[i];
        row.kind = batch.kinds[i];
        row.wkey = batch.keys ? JSON.stringify(batch.keys[i]) : "";
        row.push(row.kind);
        const id = `${row.wkey}|${row[start]}|${row[end]}`;
        if (!results.has(id)) {
          results.set(id, []);
          if (!bounds.has(row.wkey)) bounds.set(row.wkey, []);
          bounds.get(row.wkey).push([row[start], row[end], id]);
        }
        results.get(id).push(row);
      }
      at += size;
      this.grid.replace(results, (row) => {
        for (const [s, e, id] of bounds.get(row.wkey) || []) if (s <= row[start] && row[end] <= e) return id;
        return undefined;
      });
      this.rendered += size;
    }
  }

  togglePause() {
    this.paused = !this.paused;
    $("live-pause").textContent = this.paused ? "Resume" : "Pause";
    if (!this.paused) this.draw();
    this.count();
  }

  clear() {
    this.grid.clear();
    this.waiting = [];
    this.stats = null;
    this.reset();
    this.count();
  }

  count() {
    const el = $("live-count");
    const rows = this.grid.rows;
    let text = `${rows.length.toLocaleString()} rows`;
    if (this.windowed) {
      const finals = rows.reduce((n, r) => n + (r.kind === "final"), 0);
      text += ` (${finals.toLocaleString()} final)`;
      el.dataset.final = String(finals);
    }
    if (this.paused) {
      const waiting = this.windowed ? this.waiting.reduce((n, b) => n + b.rows.length, 0) : this.waiting.length;
      text += ` (paused, ${waiting.toLocaleString()} waiting)`;
    }
    const stats = this.stats || {};
    if (stats.dropped) text += `, ${stats.dropped.toLocaleString()} dropped by the server`;
    if (stats.late) text += `, ${stats.late.toLocaleString()} late (their windows were already emitted)`;
    if (stats.window_dropped) text += `, ${stats.window_dropped.toLocaleString()} over a window's capacity`;
    if (stats.truncated_runs) text += `, ${stats.truncated_runs.toLocaleString()} runs cut at the row cap`;
    if (this.suppressed) text += `, ${this.suppressed.toLocaleString()} held back by the limit`;
    el.textContent = text;
    el.dataset.rendered = String(this.rendered);
    el.dataset.received = String(this.received);
  }

  tick() {
    this.perSecond.push(this.thisSecond);
    this.perSecond.shift();
    $("live-rate").textContent = this.source ? `${this.thisSecond.toLocaleString()} rows/s` : "";
    this.thisSecond = 0;
    if (!$("page-live").hidden) barChart($("live-chart"), this.perSecond, "rows/s");
  }

  status(text, cls = "status") {
    $("live-status").textContent = text;
    $("live-status").className = cls;
  }
}
