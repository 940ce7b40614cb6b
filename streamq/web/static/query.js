// The Query page: run one statement, see its rows (sorted, filtered, virtualised), download
// them, see an error where SQLite places it, and keep a history of past queries in the browser.
import { $, el, postJSON, session } from "./api.js";
import { SqlEditor, errorPlace } from "./editor.js";
import { Grid, download, toCSV, toJSON } from "./grid.js";

const HISTORY_KEY = "streamq.history";
const HISTORY_MAX = 100;

export class QueryPage {
  constructor() {
    this.editor = new SqlEditor($("query-sql"), () => this.run());
    this.grid = new Grid($("query-grid"));
    this.running = false;
    $("query-run").addEventListener("click", () => this.run());
    $("query-filter").addEventListener("input", (e) => {
      this.grid.filter(e.target.value);
      this.showCount();
    });
    $("query-csv").addEventListener("click", () =>
      download("streamq.csv", "text/csv", toCSV(this.grid.columns, this.grid.shownRows())),
    );
    $("query-json").addEventListener("click", () =>
      download("streamq.json", "application/json", toJSON(this.grid.columns, this.grid.shownRows())),
    );
    this.renderHistory();
  }

  show() {
    this.editor.textarea.focus();
  }

  load(sql, run = false) {
    this.editor.value = sql;
    if (run) this.run();
  }

  async run() {
    const sql = this.editor.value.trim();
    if (!sql || this.running) return;
    this.running = true;
    $("query-error").hidden = true;
    $("query-status").textContent = "running…";
    $("query-status").className = "status busy";
    const started = performance.now();
    try {
      const reply = await postJSON("/api/query", { sql });
      if (reply.error) return this.showError(sql, reply);
      this.grid.setData(reply.columns, reply.rows);
      this.lastMs = reply.elapsed_ms;
      this.truncated = reply.truncated;
      this.showCount();
      $("query-status").dataset.firstRowMs = String(Math.round(performance.now() - started));
      this.remember(sql, reply.rows.length);
      $("query-csv").disabled = $("query-json").disabled = false;
    } finally {
      this.running = false;
    }
  }

  showCount() {
    const total = this.grid.rows.length;
    const shown = this.grid.shown;
    let text = `${total.toLocaleString()} row${total === 1 ? "" : "s"}`;
    if (shown !== total) text = `${shown.toLocaleString()} of ${text}`;
    if (this.lastMs !== undefined) text += ` in ${this.lastMs} ms`;
    const status = $("query-status");
    status.className = "status";
    if (this.truncated) {
      const limits = session.info.limits;
      const cap = this.truncated === "bytes" ? `${limits.bytes.toLocaleString()} bytes` : `${limits.rows.toLocaleString()} rows`;
      text += ` — truncated: the result reached the cap of ${cap}`;
      status.className = "status warn";
    }
    status.textContent = text;
    status.dataset.rows = String(total);
  }

  showError(sql, reply) {
    const box = $("query-error");
    const parts = [el("strong", { text: reply.kind === "deadline" ? "Deadline reached: " : "Error: " }), reply.error];
    if (Number.isInteger(reply.offset)) {
      const place = errorPlace(sql, reply.offset);
      parts.push(el("pre", { class: "place", text: `line ${place.line}, column ${place.column}\n${place.text}\n${place.caret}` }));
      this.editor.markError(reply.offset);
    }
    box.replaceChildren(...parts);
    box.className = reply.kind === "deadline" ? "error deadline" : "error";
    box.hidden = false;
    $("query-status").textContent = "";
    // The rows below belong to an earlier query: leaving them would read as this one's answer.
    this.grid.clear();
    $("query-csv").disabled = $("query-json").disabled = true;
  }

  history() {
    try {
      return JSON.parse(localStorage.getItem(HISTORY_KEY)) || [];
    } catch {
      return [];
    }
  }

  remember(sql, rows) {
    const past = this.history().filter((h) => h.sql !== sql);
    past.unshift({ sql, rows, at: Date.now() });
    localStorage.setItem(HISTORY_KEY, JSON.stringify(past.slice(0, HISTORY_MAX)));
    this.renderHistory();
  }

  renderHistory() {
    $("query-history").replaceChildren(
      ...this.history().map((h) =>
        el(
          "li",
          { title: new Date(h.at).toLocaleString(), onclick: () => this.load(h.sql) },
          el("code", { text: h.sql }),
          el("span", { class: "muted", text: ` ${h.rows} rows` }),
        ),
      ),
    );
  }
}
