// The console's shell: load the session, then show one page at a time (#query, #live, ...).
import { $, getJSON, session } from "./api.js";
import { FleetPage } from "./fleet.js";
import { LivePage } from "./live.js";
import { QueryPage } from "./query.js";
import { SchedulePage } from "./schedule.js";
import { TablesPage } from "./tables.js";

const pages = {};

function route() {
  const name = (location.hash || "#query").slice(1);
  const current = pages[name] ? name : "query";
  for (const [key, page] of Object.entries(pages)) {
    const on = key === current;
    $(`page-${key}`).hidden = !on;
    if (on) page.show?.();
    else page.hide?.();
  }
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.page === current);
}

async function main() {
  const info = await getJSON("/api/session");
  if (info.error) return;
  session.csrf = info.csrf;
  session.info = info;
  $("serving").textContent = `serving the ${info.serving}`;
  pages.query = new QueryPage();
  pages.live = new LivePage();
  pages.schedule = new SchedulePage();
  pages.fleet = new FleetPage();
  pages.tables = new TablesPage(pages.query);
  window.addEventListener("hashchange", route);
  route();
  document.body.dataset.ready = "1";
}

main();
