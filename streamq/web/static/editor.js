// An SQL textarea with completion of tables, columns and keywords (from the table specs),
// and Ctrl+Enter to run.
import { el, specs } from "./api.js";

const KEYWORDS = (
  "SELECT FROM WHERE AND OR NOT IN IS NULL LIKE GLOB BETWEEN JOIN LEFT INNER CROSS ON USING AS " +
  "GROUP BY ORDER HAVING LIMIT OFFSET DISTINCT UNION ALL EXCEPT INTERSECT WITH RECURSIVE CASE WHEN " +
  "THEN ELSE END ASC DESC COUNT SUM AVG MIN MAX LENGTH LOWER UPPER SUBSTR REPLACE COALESCE IFNULL " +
  "CAST PRINTF DATETIME STRFTIME JSON_EXTRACT EXISTS OVER PARTITION"
).split(" ");
const MAX_SUGGESTIONS = 12;

export class SqlEditor {
  constructor(textarea, onRun) {
    this.textarea = textarea;
    this.list = textarea.parentElement.querySelector(".completions");
    this.onRun = onRun;
    this.items = [];
    this.active = 0;
    this.tables = new Map(); // name -> column names
    specs().then((all) => {
      for (const t of all) this.tables.set(t.name, t.columns.map((c) => c.name));
    });
    textarea.addEventListener("keydown", (e) => this.keydown(e));
    textarea.addEventListener("input", () => this.suggest());
    textarea.addEventListener("blur", () => setTimeout(() => this.close(), 150));
  }

  get value() {
    return this.textarea.value;
  }

  set value(text) {
    this.textarea.value = text;
    this.close();
  }

  keydown(e) {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      this.close();
      this.onRun();
      return;
    }
    if (this.list.hidden) {
      if (e.key === "Tab" && this.wordBefore().word) {
        e.preventDefault();
        this.suggest(true);
      }
      return;
    }
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      this.active = (this.active + (e.key === "ArrowDown" ? 1 : -1) + this.items.length) % this.items.length;
      this.paint();
    } else if (e.key === "Tab" || e.key === "Enter") {
      e.preventDefault();
      this.accept(this.items[this.active]);
    } else if (e.key === "Escape") {
      this.close();
    }
  }

  wordBefore() {
    const upto = this.textarea.value.slice(0, this.textarea.selectionStart);
    const m = /([A-Za-z_][A-Za-z0-9_]*)?(\.)?([A-Za-z_][A-Za-z0-9_]*)?$/.exec(upto);
    if (m && m[2]) return { word: m[3] || "", qualifier: m[1], start: upto.length - (m[3] || "").length, upto };
    const w = /[A-Za-z_][A-Za-z0-9_]*$/.exec(upto);
    return { word: w ? w[0] : "", qualifier: null, start: upto.length - (w ? w[0].length : 0), upto };
  }

  // Columns of the tables the statement names come first, then tables, then keywords.
  candidates({ word, qualifier, upto }) {
    const text = this.textarea.value;
    if (qualifier) {
      const table = this.tables.has(qualifier) ? qualifier : this.aliasTable(text, qualifier);
      return table ? this.tables.get(table) : [];
    }
    const named = [...this.tables.keys()].filter((t) => new RegExp(`\\b${t}\\b`).test(text));
    const afterFrom = /\b(FROM|JOIN)\s+[A-Za-z0-9_]*$/i.test(upto);
    const columns = named.flatMap((t) => this.tables.get(t));
    const groups = afterFrom ? [[...this.tables.keys()], columns, KEYWORDS] : [columns, [...this.tables.keys()], KEYWORDS];
    const seen = new Set();
    const out = [];
    const lower = word.toLowerCase();
    for (const group of groups) {
      for (const name of group) {
        if (name.toLowerCase().startsWith(lower) && !seen.has(name.toLowerCase())) {
          seen.add(name.toLowerCase());
          out.push(name);
        }
      }
    }
    return out;
  }

  aliasTable(text, alias) {
    const m = new RegExp(`\\b([A-Za-z_][A-Za-z0-9_]*)\\s+(?:AS\\s+)?${alias}\\b`, "i").exec(text);
    return m && this.tables.has(m[1]) ? m[1] : null;
  }

  suggest(force = false) {
    const at = this.wordBefore();
    if (!force && !at.word && !at.qualifier) return this.close();
    const lower = at.word.toLowerCase();
    this.items = this.candidates(at)
      .filter((n) => n.toLowerCase() !== lower || force)
      .slice(0, MAX_SUGGESTIONS);
    if (!this.items.length) return this.close();
    this.at = at;
    this.active = 0;
    this.paint();
  }

  paint() {
    this.list.replaceChildren(
      ...this.items.map((name, i) =>
        el("li", {
          class: i === this.active ? "active" : "",
          text: name,
          onmousedown: (e) => {
            e.preventDefault();
            this.accept(name);
          },
        }),
      ),
    );
    this.list.hidden = false;
  }

  accept(name) {
    const ta = this.textarea;
    const { start } = this.at;
    const end = ta.selectionStart;
    const insert = /^[A-Z]+$/.test(name) && this.at.word === this.at.word.toLowerCase() ? name.toLowerCase() : name;
    ta.setRangeText(insert, start, end, "end");
    this.close();
    ta.focus();
  }

  close() {
    this.list.hidden = true;
    this.items = [];
  }

  // Put the caret where SQLite located a mistake.
  markError(offset) {
    const ta = this.textarea;
    ta.focus();
    ta.setSelectionRange(offset, Math.min(ta.value.length, offset + 1));
  }
}

// "line L, column C" and the line with a caret under the place, for an error shown in place.
export function errorPlace(sql, offset) {
  const before = sql.slice(0, offset);
  const line = before.split("\n").length;
  const column = offset - before.lastIndexOf("\n");
  const text = sql.split("\n")[line - 1];
  return { line, column, text, caret: " ".repeat(Math.max(0, column - 1)) + "^" };
}
