// A table that shows 100,000 rows smoothly: only the rows in view exist in the page
// (virtualised), sorted and filtered through an index over the rows, never copies.
import { el } from "./api.js";

const ROW_HEIGHT = 24;
const OVERSCAN = 10;

export function cellText(value) {
  if (value === null || value === undefined) return "";
  return typeof value === "string" ? value : String(value);
}

export class Grid {
  constructor(container, { maxRows = Infinity } = {}) {
    this.container = container;
    this.maxRows = maxRows; // a live grid keeps the newest rows only
    this.columns = [];
    this.rows = [];
    this.view = null; // indices into rows when sorted or filtered; null: every row in order
    this.sort = null; // {index, desc}
    this.filterText = "";
    this.texts = []; // lower-case text of each row, made when a filter first needs it
    this.widths = [];
    this.viewport = el("div", { class: "viewport" });
    this.header = el("div", { class: "row head" });
    this.body = el("div", { class: "body" });
    this.visible = el("div", { class: "visible" });
    this.body.append(this.visible);
    this.viewport.append(this.header, this.body);
    container.replaceChildren(this.viewport);
    this.viewport.addEventListener("scroll", () => this.schedule());
    this.pending = false;
  }

  setData(columns, rows) {
    this.columns = columns;
    this.rows = rows;
    this.texts = [];
    this.sort = null;
    this.widths = this.measure(columns, rows);
    this.renderHeader();
    this.refilter();
    this.viewport.scrollTop = 0;
  }

  setColumns(columns) {
    this.setData(columns, []);
  }

  // Live rows: appended at the end; the grid keeps at most maxRows, dropping the oldest.
  append(rows) {
    if (!rows.length) return;
    const atBottom = this.viewport.scrollTop + this.viewport.clientHeight >= this.viewport.scrollHeight - ROW_HEIGHT * 2;
    if (this.rows.length === 0) {
      this.widths = this.measure(this.columns, rows);
      this.renderHeader();
    }
    for (const row of rows) this.rows.push(row);
    const over = this.rows.length - this.maxRows;
    if (over > 0) {
      this.rows.splice(0, over);
      this.texts = [];
    }
    if (this.view || over > 0) this.refilter();
    else this.layout();
    if (atBottom) this.viewport.scrollTop = this.viewport.scrollHeight;
  }

  // Live windows: each new result takes the place of the rows it supersedes (``supersedes(row)``
  // names the result, a key of ``results``, or undefined), at the first of them; a result that
  // supersedes nothing goes at the end.
  replace(results, supersedes) {
    if (!results.size) return;
    const atBottom = this.viewport.scrollTop + this.viewport.clientHeight >= this.viewport.scrollHeight - ROW_HEIGHT * 2;
    const placed = new Set();
    const kept = [];
    for (const row of this.rows) {
      const id = supersedes(row);
      if (id === undefined) kept.push(row);
      else if (!placed.has(id)) {
        placed.add(id);
        for (const r of results.get(id)) kept.push(r);
      }
    }
    for (const [id, rows] of results) if (!placed.has(id)) for (const r of rows) kept.push(r);
    if (this.rows.length === 0) {
      this.widths = this.measure(this.columns, kept);
      this.renderHeader();
    }
    this.rows = kept.length > this.maxRows ? kept.slice(kept.length - this.maxRows) : kept;
    this.texts = [];
    this.refilter();
    if (atBottom) this.viewport.scrollTop = this.viewport.scrollHeight;
  }

  clear() {
    this.rows = [];
    this.texts = [];
    this.refilter();
  }

  get shown() {
    return this.view ? this.view.length : this.rows.length;
  }

  measure(columns, rows) {
    const sample = rows.slice(0, 200);
    return columns.map((name, i) => {
      let longest = name.length + 2;
      for (const row of sample) longest = Math.max(longest, cellText(row[i]).length);
      return Math.min(Math.max(longest, 4), 48) * 8.2 + 20;
    });
  }

  renderHeader() {
    this.header.replaceChildren(
      ...this.columns.map((name, i) => {
        const mark = this.sort && this.sort.index === i ? (this.sort.desc ? " ▼" : " ▲") : "";
        return el("div", {
          class: "cell",
          style: `width:${this.widths[i]}px`,
          title: "sort",
          text: name + mark,
          onclick: () => this.sortBy(i),
        });
      }),
    );
  }

  sortBy(index) {
    const desc = this.sort && this.sort.index === index ? !this.sort.desc : false;
    this.sort = { index, desc };
    this.renderHeader();
    this.refilter();
  }

  filter(text) {
    this.filterText = text.toLowerCase();
    this.refilter();
  }

  refilter() {
    let view = null;
    if (this.filterText) {
      view = [];
      const needle = this.filterText;
      for (let i = 0; i < this.rows.length; i++) {
        if (this.texts[i] === undefined) this.texts[i] = this.rows[i].map(cellText).join("\u0000").toLowerCase();
        if (this.texts[i].includes(needle)) view.push(i);
      }
    }
    if (this.sort) {
      const { index, desc } = this.sort;
      view = view || this.rows.map((_, i) => i);
      const rows = this.rows;
      view.sort((a, b) => compare(rows[a][index], rows[b][index]) * (desc ? -1 : 1) || a - b);
    }
    this.view = view;
    this.layout();
  }

  layout() {
    const width = this.widths.reduce((a, b) => a + b, 0);
    this.body.style.height = `${this.shown * ROW_HEIGHT}px`;
    this.body.style.width = `${width}px`;
    this.header.style.width = `${width}px`;
    this.schedule();
  }

  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.render();
    });
  }

  render() {
    const top = Math.max(0, this.viewport.scrollTop - this.header.offsetHeight);
    const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - OVERSCAN);
    const count = Math.ceil(this.viewport.clientHeight / ROW_HEIGHT) + 2 * OVERSCAN;
    const last = Math.min(this.shown, first + count);
    const lines = [];
    for (let n = first; n < last; n++) {
      const row = this.rows[this.view ? this.view[n] : n];
      const line = el("div", { class: (n % 2 ? "row odd" : "row") + (row.kind ? ` ${row.kind}` : "") });
      for (let i = 0; i < this.columns.length; i++) line.append(cell(row[i], this.widths[i]));
      lines.push(line);
    }
    this.visible.style.transform = `translateY(${first * ROW_HEIGHT}px)`;
    this.visible.replaceChildren(...lines);
  }

  // The rows as shown (filtered and sorted), for downloads.
  shownRows() {
    return this.view ? this.view.map((i) => this.rows[i]) : this.rows;
  }
}

function cell(value, width) {
  const node = document.createElement("div");
  node.style.width = `${width}px`;
  if (value === null || value === undefined) {
    node.className = "cell null";
    node.textContent = "NULL";
  } else {
    node.className = typeof value === "number" ? "cell num" : "cell";
    node.textContent = cellText(value);
    node.title = node.textContent.length > 40 ? node.textContent.slice(0, 2000) : "";
  }
  return node;
}

// NULL first, numbers by value, then text.
function compare(a, b) {
  if (a === b) return 0;
  if (a === null || a === undefined) return -1;
  if (b === null || b === undefined) return 1;
  if (typeof a === "number" && typeof b === "number") return a - b;
  if (typeof a === "number") return -1;
  if (typeof b === "number") return 1;
  return String(a) < String(b) ? -1 : 1;
}

export function toCSV(columns, rows) {
  const quote = (v) => {
    const s = cellText(v);
    return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
  };
  return [columns.map(quote).join(","), ...rows.map((r) => r.map(quote).join(","))].join("\r\n") + "\r\n";
}

export function toJSON(columns, rows) {
  return JSON.stringify(rows.map((r) => Object.fromEntries(columns.map((c, i) => [c, r[i]]))), null, 1);
}

export function download(name, type, text) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = el("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// Small tables (the Schedule page): every row in the page.
export function plainTable(container, columns, rows) {
  const head = el("tr", {}, ...columns.map((c) => el("th", { text: c })));
  const body = rows.map((r) =>
    el("tr", {}, ...r.map((v) => (v === null ? el("td", { class: "null", text: "NULL" }) : el("td", { class: typeof v === "number" ? "num" : "", text: cellText(v) })))),
  );
  container.replaceChildren(el("table", {}, el("thead", {}, head), el("tbody", {}, ...body)));
}
