/* The county supervision console: every hall of the county, from what their engines publish
   (hallwatch county). Alerts filterable by hall, kind and state; devices offline; windows and
   staff ranked by today's alerted 空岗 minutes. */
"use strict";

(() => {
  const { $, esc, api, clock, live, alertList, alertAsks, hm, clockText, connection, ALERT_KIND, ALERT_STATE, SEVERITY } = HW;
  let sites = [];
  let alerts = new Map();
  const filter = { state: "all", site: "", kind: "" };
  let reloadTimer = null;
  const by = $("#by");
  const alertsList = alertList($("#alerts"),
    (li) => `/api/v1/county/sites/${encodeURIComponent(li.dataset.site)}/alerts/${encodeURIComponent(li.dataset.alert)}`, by,
    (alert) => { alerts.set(key(alert), { ...alerts.get(key(alert)), ...alert }); renderAlerts(); });
  by.value = localStorage.getItem("hallwatch.by") || "";
  by.addEventListener("change", () => localStorage.setItem("hallwatch.by", by.value.trim()));
  const key = (a) => `${a.site}/${a.id}`;
  const STORE_CHANGE_SHOWN_S = 7 * 86400;
  const changedAt = (a) => [a.since, a.acknowledged_at, a.until].filter(Boolean).sort().pop();
  const count = (n, cls) => (n ? `<span class="badge ${cls}">${n}</span>` : "0");

  function renderSites() {
    $("#site-count").textContent = `${sites.length} 个`;
    $("#sites").innerHTML = sites.map((s) => `<tr data-site="${esc(s.id)}">
      <td>${esc(s.name)}${s.missing_alerts ? ' <span class="badge paused" title="正在向该大厅补取告警">补取中</span>' : ""}${
        s.store_changed_at && Date.now() / 1000 - s.store_changed_at < STORE_CHANGE_SHOWN_S
          ? ' <span class="badge paused" data-store-changed title="该大厅引擎换用了新的数据库：此前的告警已归档，告警编号重新开始">换库</span>' : ""}</td>
      <td>${esc(s.township || "")}</td>
      <td>${s.heard ? (s.open === null ? "—" : s.open ? "工作时间" : "非工作时间") : "未收到数据"}</td>
      <td class="num">${s.windows.staffed}</td>
      <td class="num" data-unstaffed>${count(s.windows.unstaffed, "unstaffed")}</td>
      <td class="num">${s.windows.unverified}</td>
      <td class="num" data-not-opened>${count(s.windows.not_opened, "unstaffed")}</td>
      <td class="num">${s.windows.paused}</td>
      <td class="num">${s.waiting ?? "—"}</td>
      <td class="num" data-firing>${count(s.alerts.firing, "firing")}${s.alerts.acknowledged ? ` / ${s.alerts.acknowledged}` : ""}</td>
      <td class="num">${s.devices_offline}</td></tr>`).join("");
    const chosen = $("#filter-site").value;
    $("#filter-site").innerHTML = `<option value="">全部</option>` + sites.map((s) =>
      `<option value="${esc(s.id)}"${s.id === chosen ? " selected" : ""}>${esc(s.name)}</option>`).join("");
  }

  function renderDevices(list) {
    $("#device-count").textContent = `${list.length} 台`;
    $("#devices").innerHTML = HW.offlineDeviceRows(list);
  }

  // The halls' day figures, when there are some, rank every 空岗 category (unverified too) of a
  // whole day; today's alerts rank what is alerted so far.
  let rankings = null;
  let rankBy = null;
  $("#rank-tabs").addEventListener("click", (e) => {
    if (!e.target.dataset.r) return;
    rankBy = e.target.dataset.r;
    renderRanking();
  });

  function renderRanking() {
    if (!rankings) return;
    const byFigures = (rankBy || (rankings.figures.day ? "figures" : "alerts")) === "figures";
    for (const b of $("#rank-tabs").children) b.classList.toggle("on", (b.dataset.r === "figures") === byFigures);
    $("#rank-basis").textContent = byFigures
      ? (rankings.figures.day ? `${rankings.figures.day} 各大厅日统计：未开窗、无人在座、无法核实` : "尚未收到各大厅的日统计")
      : "今日按告警计：未开窗、无人在座（含正在持续的）";
    const r = byFigures ? rankings.figures : rankings.alerts;
    const rows = HW.rankingRows(r, 10, byFigures ? "没有空岗" : "今天没有空岗告警");
    $("#rank-windows").innerHTML = rows.windows;
    $("#rank-staff").innerHTML = rows.staff;
  }

  function renderAlerts() {
    const all = [...alerts.values()].sort((a, b) => (changedAt(a) < changedAt(b) ? 1 : -1));
    const shown = all.filter((a) => (filter.state === "all" || a.state === filter.state)
      && (!filter.site || a.site === filter.site) && (!filter.kind || a.kind === filter.kind)).slice(0, 200);
    const firing = all.filter((a) => a.state === "firing").length;
    $("#alert-count").textContent = `今日 ${all.length} 条，${ALERT_STATE.firing} ${firing} 条`;
    alertsList.render(shown.length ? shown.map((a) => `
      <li class="${a.state}" data-alert="${esc(a.id)}" data-site="${esc(a.site)}" data-kind="${esc(a.kind)}">
        <span class="what"><span class="badge ${a.severity}">${esc(SEVERITY[a.severity] || a.severity)}</span>
          ${esc(a.site_name || a.site)} · ${esc(ALERT_KIND[a.kind] || a.kind)} · ${esc(a.window_name || a.window || a.device || "")}
          <span class="badge ${a.state}">${esc(ALERT_STATE[a.state])}</span></span>
        <span class="meta">${esc(hm(a.since))} 起${a.until ? " 至 " + esc(hm(a.until)) : ""}${a.staff_name || a.staff ? "，当班：" + esc(a.staff_name || a.staff) : ""}${a.acknowledged_by ? "，" + esc(HW.operator(a.acknowledged_by)) + " " + esc(hm(a.acknowledged_at)) + " 确认" : ""}</span>
        ${alertAsks(a)}
        ${a.state === "firing" ? alertsList.form(a) : ""}
        ${a.note ? `<span class="note">说明：${esc(a.note)}</span>` : ""}
        <span class="error"></span>
      </li>`).join("") : `<li class="empty-note">没有告警</li>`);
  }

  $("#filter-kind").innerHTML += Object.entries(ALERT_KIND).map(([k, label]) => `<option value="${esc(k)}">${esc(label)}</option>`).join("");
  $("#filter-site").addEventListener("change", (e) => { filter.site = e.target.value; renderAlerts(); });
  $("#filter-kind").addEventListener("change", (e) => { filter.kind = e.target.value; renderAlerts(); });
  $("#tabs").addEventListener("click", (e) => {
    if (!e.target.dataset.f) return;
    filter.state = e.target.dataset.f;
    for (const b of $("#tabs").children) b.classList.toggle("on", b === e.target);
    renderAlerts();
  });

  async function load() {
    const s = await api("/api/v1/county");
    clock.sync(s.now_ms);
    sites = s.sites;
    alerts = new Map(s.alerts.map((a) => [key(a), a]));
    renderSites();
    renderDevices(s.devices_offline);
    rankings = { alerts: s.ranking, figures: s.ranking_figures };
    renderRanking();
    renderAlerts();
  }

  function reloadSoon() {
    if (reloadTimer) return;
    reloadTimer = setTimeout(() => { reloadTimer = null; load().catch(() => {}); }, 1000);
  }

  live("/api/v1/county/stream", {
    alert: (a) => { alerts.set(key(a), { ...alerts.get(key(a)), ...a }); renderAlerts(); reloadSoon(); },
    window: () => reloadSoon(),
    queue: () => reloadSoon(),
    device: () => reloadSoon(),
    link: () => reloadSoon(),
    figures: () => reloadSoon(),
    // The owning engine's answer to an acknowledgement sent from here (perhaps after its link came back).
    acknowledgement: (a) => {
      const li = [...$("#alerts").children].find((el) => el.dataset.site === a.site && el.dataset.alert === a.alert);
      const error = li && li.querySelector(".error");
      if (error) error.textContent = a.state === "refused" ? `乡镇未确认：${a.message || a.error}` : "";
    },
  }, { onOpen: () => load().catch(() => {}), onState: connection($("#conn")) });

  const tick = () => { $("#clock").textContent = clockText(clock.now(), "Asia/Shanghai").time; };
  setInterval(tick, 500);
  tick();
  setInterval(() => load().catch(() => {}), 60000);
})();
