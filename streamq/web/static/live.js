// The Live page: a --follow query whose new rows arrive as Server-Sent Events. Rows are
// drawn once per animation frame whatever their rate, so thousands a second stay smooth.
import { $, postJSON } from "./api.js";
import { barChart } from "./chart.js";
import { SqlEditor } from "./editor.js";
import { Grid } from "./grid.js";

const KEEP_ROWS = 100_000; // rows the page holds; older ones leave the grid
const CHART_SECONDS = 60;

export class LivePage {
  constructor() {
    this.editor = new SqlEditor($("live-sql"), () => this.start());
    this.grid = new Grid($("live-grid"), { maxRows: KEEP_ROWS });
    this.source = null;
    this.paused = false;
    this.waiting = []; // rows received, not yet drawn
    this.reset();
    $("live-start").addEventListener("click", () => this.start());
    $("live-stop").addEventListener("click", () => this.stop("stopped"));
    $("live-pause").addEventListener("click", () => this.togglePause());
    $("live-clear").addEventListener("click", () => this.clear());
    setInterval(() => this.tick(), 1000);
  }

  reset() {
    this.received = 0;
    this.rendered = 0;
    this.perSecond = new Array(CHART_SECONDS).fill(0);
    this.thisSecond = 0;
  }

  async start() {
    this.stop();
    const sql = this.editor.value.trim();
    if (!sql) return;
    $("live-error").hidden = true;
    this.status("starting…");
    const reply = await postJSON("/api/live", { sql });
    if (reply.error) {
      $("live-error").textContent = reply.error;
      $("live-error").hidden = false;
      this.status("");
      return;
    }
    this.clear();
    this.grid.setColumns(reply.columns);
    this.status(`following ${reply.tables.join(", ")}`, "status live");
    const source = new EventSource(`/api/live/${reply.id}`);
    this.source = source;
    source.addEventListener("rows", (e) => this.take(JSON.parse(e.data)));
    source.addEventListener("end", (e) => this.stop(JSON.parse(e.data).message));
    source.onerror = () => {
      if (this.source === source) this.stop("the connection to the console was lost");
    };
    $("live-stop").disabled = $("live-pause").disabled = false;
  }

  stop(message) {
    if (this.source) {
      this.source.close();
      this.source = null;
    }
    $("live-stop").disabled = $("live-pause").disabled = true;
    if (message) this.status(message, "status");
  }

  take(batch) {
    this.received += batch.rows.length;
    this.thisSecond += batch.rows.length;
    for (const row of batch.rows) this.waiting.push(row);
    if (this.waiting.length > KEEP_ROWS) this.waiting.splice(0, this.waiting.length - KEEP_ROWS);
    this.dropped = batch.dropped;
    if (!this.paused) this.draw();
  }

  draw() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = null;
      if (this.paused || !this.waiting.length) return;
      const rows = this.waiting;
      this.waiting = [];
      this.grid.append(rows);
      this.rendered += rows.length;
      this.count();
    });
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
    this.reset();
    this.count();
  }

  count() {
    const el = $("live-count");
    let text = `${this.grid.rows.length.toLocaleString()} rows`;
    if (this.paused) text += ` (paused, ${this.waiting.length.toLocaleString()} waiting)`;
    if (this.dropped) text += `, ${this.dropped.toLocaleString()} dropped by the server`;
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
