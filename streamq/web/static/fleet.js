// The Fleet page: a signed fleet query to every host (or the ones named); each host's rows
// appear, tagged with its identifier, as its answer arrives; hosts that did not answer are listed.
import { $, el, postRaw, session } from "./api.js";
import { SqlEditor } from "./editor.js";
import { Grid } from "./grid.js";

export class FleetPage {
  constructor() {
    this.editor = new SqlEditor($("fleet-sql"), () => this.run());
    this.grid = new Grid($("fleet-grid"));
    $("fleet-run").addEventListener("click", () => this.run());
    if (!session.info.fleet) {
      $("fleet-status").textContent = "no [fleet] section in this console's config: fleet queries are off";
      $("fleet-run").disabled = true;
    }
  }

  async run() {
    const sql = this.editor.value.trim();
    if (!sql || this.running) return;
    this.running = true;
    const hosts = $("fleet-hosts").value.split(",").map((h) => h.trim()).filter(Boolean);
    $("fleet-error").hidden = true;
    $("fleet-hostlist").replaceChildren();
    this.columns = ["host"];
    this.rows = [];
    this.grid.setData(this.columns, []);
    $("fleet-status").textContent = "asking…";
    try {
      const response = await postRaw("/api/fleet", hosts.length ? { sql, hosts } : { sql });
      if (!response.ok) {
        const body = await response.json().catch(() => ({ error: response.statusText }));
        return this.fail(body.error);
      }
      await this.read(response.body.getReader());
    } finally {
      this.running = false;
    }
  }

  async read(reader) {
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (value) buffer += decoder.decode(value, { stream: true });
      let nl;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        this.take(JSON.parse(buffer.slice(0, nl)));
        buffer = buffer.slice(nl + 1);
      }
      if (done) return;
    }
  }

  take(line) {
    if (line.done) return this.finish(line);
    const list = $("fleet-hostlist");
    if (line.error) {
      list.append(el("li", { class: "bad", text: `${line.host}: error: ${line.error}` }));
      return;
    }
    for (const c of line.columns) if (!this.columns.includes(c)) this.columns.push(c);
    const at = this.columns.map((c) => line.columns.indexOf(c));
    for (const row of line.rows) this.rows.push(at.map((i, n) => (n === 0 ? line.host : i >= 0 ? row[i] : null)));
    const note = line.truncated ? " (truncated by its row cap)" : "";
    list.append(el("li", { class: "good", "data-host": line.host, text: `${line.host}: ${line.rows.length} row${line.rows.length === 1 ? "" : "s"}${note}` }));
    this.grid.setData(this.columns, this.rows);
    $("fleet-status").textContent = `${list.querySelectorAll(".good").length} host(s) answered…`;
  }

  finish(line) {
    if (line.error) return this.fail(line.error);
    const list = $("fleet-hostlist");
    for (const host of line.missing) {
      const status = line.statuses[host] ? ` (status: ${line.statuses[host]})` : "";
      list.append(el("li", { class: "missing", "data-host": host, text: `${host}: no answer${status}` }));
    }
    for (const host of line.duplicates) list.append(el("li", { class: "bad", text: `${host}: answered twice` }));
    const answered = list.querySelectorAll(".good").length;
    $("fleet-status").textContent = `${answered} host(s) answered, ${line.missing.length} did not`;
    $("fleet-status").dataset.done = "1";
  }

  fail(message) {
    $("fleet-error").textContent = message;
    $("fleet-error").hidden = false;
    $("fleet-status").textContent = "";
  }
}
