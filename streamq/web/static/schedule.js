// The Schedule page: the daemon's queries, sources and sinks from the streamq_* tables,
// refreshed every two seconds while the page is shown, with events/s and rows delivered/s.
import { $, postJSON } from "./api.js";
import { lineChart } from "./chart.js";
import { plainTable } from "./grid.js";

const EVERY_MS = 2000;
const POINTS = 60;
const QUERIES =
  "SELECT name, mode, trigger, executions, rows_out, errors, denylisted, last_wall_time_ms, sinks, last_error FROM streamq_schedule";
const EVENTS = "SELECT name, source, kind, mode, active, events, buffered, dropped, expired, errors, last_error FROM streamq_events";
const SINKS = "SELECT name, type, sent, queued, spooled, failed, dropped, last_error FROM streamq_sinks";

export class SchedulePage {
  constructor() {
    this.timer = null;
    this.previous = null; // {at, events: Map, sinks: Map}
    this.eventRates = new Map();
    this.sinkRates = new Map();
  }

  show() {
    if (!this.timer) {
      this.refresh();
      this.timer = setInterval(() => this.refresh(), EVERY_MS);
    }
  }

  hide() {
    clearInterval(this.timer);
    this.timer = null;
  }

  async refresh() {
    const [queries, events, sinks] = await Promise.all([QUERIES, EVENTS, SINKS].map((sql) => postJSON("/api/query", { sql })));
    const failed = [queries, events, sinks].find((r) => r.error);
    if (failed) {
      $("schedule-status").textContent = failed.error;
      return;
    }
    plainTable($("schedule-queries"), queries.columns, queries.rows);
    plainTable($("schedule-events"), events.columns, events.rows);
    plainTable($("schedule-sinks"), sinks.columns, sinks.rows);
    this.rates(events, sinks);
    $("schedule-status").textContent = `updated ${new Date().toLocaleTimeString()} · every ${EVERY_MS / 1000}s`;
  }

  rates(events, sinks) {
    const now = performance.now();
    const counts = (reply, column) => {
      const i = reply.columns.indexOf(column);
      return new Map(reply.rows.map((r) => [r[0], r[i]]));
    };
    const current = { at: now, events: counts(events, "events"), sinks: counts(sinks, "sent") };
    if (this.previous) {
      const seconds = (now - this.previous.at) / 1000;
      addRates(this.eventRates, current.events, this.previous.events, seconds);
      addRates(this.sinkRates, current.sinks, this.previous.sinks, seconds);
      lineChart($("chart-events"), this.eventRates);
      lineChart($("chart-sinks"), this.sinkRates);
    }
    this.previous = current;
  }
}

function addRates(series, now, before, seconds) {
  for (const [name, value] of now) {
    const rate = Math.max(0, Math.round((value - (before.get(name) ?? value)) / seconds));
    const values = series.get(name) || [];
    values.push(rate);
    if (values.length > POINTS) values.shift();
    series.set(name, values);
  }
}
