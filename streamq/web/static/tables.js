// The Tables page: every table's columns, types, flags and examples; an example runs with one click.
import { $, el, go, specs } from "./api.js";

export class TablesPage {
  constructor(queryPage) {
    this.queryPage = queryPage;
    this.loaded = false;
    $("tables-filter").addEventListener("input", (e) => this.filter(e.target.value));
  }

  async show() {
    if (this.loaded) return;
    this.loaded = true;
    this.all = await specs();
    $("tables-list").replaceChildren(...this.all.map((t) => this.render(t)));
    this.filter($("tables-filter").value);
  }

  render(table) {
    const columns = el(
      "table",
      { class: "columns" },
      el("thead", {}, el("tr", {}, ...["column", "type", "flags", "description"].map((h) => el("th", { text: h })))),
      el(
        "tbody",
        {},
        ...table.columns.map((c) =>
          el(
            "tr",
            {},
            el("td", {}, el("code", { text: c.name })),
            el("td", { text: c.type }),
            el("td", { text: c.flags.join(", ") }),
            el("td", { text: c.description }),
          ),
        ),
      ),
    );
    const examples = table.examples.map((sql) =>
      el(
        "div",
        { class: "example" },
        el("button", { text: "Run", "data-sql": sql, onclick: () => this.run(sql) }),
        el("code", { text: sql }),
      ),
    );
    const node = el(
      "details",
      { class: "table-spec", id: `table-${table.name}` },
      el("summary", {}, el("code", { text: table.name }), el("span", { class: "muted", text: ` ${table.description}` })),
      columns,
      ...examples,
    );
    node.dataset.search = [table.name, table.description, ...table.columns.map((c) => c.name)].join(" ").toLowerCase();
    return node;
  }

  filter(text) {
    const needle = text.toLowerCase();
    let shown = 0;
    for (const node of $("tables-list").children) {
      node.hidden = needle && !node.dataset.search.includes(needle);
      if (!node.hidden) shown++;
    }
    $("tables-count").textContent = `${shown} of ${this.all?.length ?? 0} tables`;
  }

  run(sql) {
    go("query");
    this.queryPage.load(sql, true);
  }
}
