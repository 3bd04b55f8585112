/* The supervision console (电子监察): every site, the alert feed with acknowledgement and a
   note, the cases (办件) of every site past their due day, devices offline, windows and staff
   ranked by unstaffed minutes today. */
"use strict";

(() => {
  const { $, esc, api, clock, live, alertList, alertAsks, hm, clockText, connection, ALERT_KIND, ALERT_STATE, SEVERITY,
          WINDOW_MARK } = HW;
  let sites = [];
  let alerts = new Map();
  let filter = "all";
  let reloadTimer = null;
  const by = $("#by");
  const alertsList = alertList($("#alerts"), (li) => `/api/v1/sites/${encodeURIComponent(li.dataset.site)}/alerts/${encodeURIComponent(li.dataset.alert)}`, by,
                               (alert) => { alerts.set(alert.id, alert); renderAlerts(); });
  by.value = localStorage.getItem("hallwatch.by") || "";
  by.addEventListener("change", () => localStorage.setItem("hallwatch.by", by.value.trim()));
  const siteName = (id) => (sites.find((s) => s.id === id) || { name: id }).name;
  const changedAt = (a) => [a.since, a.acknowledged_at, a.until].filter(Boolean).sort().pop();

  function renderSites() {
    $("#site-count").textContent = `${sites.length} 个`;
    $("#sites").innerHTML = sites.map((s) => `<tr data-site="${esc(s.id)}">
      <td>${esc(s.name)}${s.windows_without_camera.length ? `<br><span class="badge no-camera" data-no-camera>${esc(WINDOW_MARK.no_camera)}：${esc(s.windows_without_camera.join("、"))}</span>` : ""}</td>
      <td>${s.open ? "工作时间" : "非工作时间"}</td>
      <td class="num">${s.windows.staffed}</td>
      <td class="num">${s.windows.unstaffed ? `<span class="badge unstaffed">${s.windows.unstaffed}</span>` : 0}</td>
      <td class="num">${s.windows.unverified}</td>
      <td class="num">${s.windows.not_opened ? `<span class="badge unstaffed">${s.windows.not_opened}</span>` : 0}</td>
      <td class="num">${s.windows.paused}</td>
      <td class="num">${s.waiting}</td>
      <td class="num">${s.alerts.firing ? `<span class="badge firing">${s.alerts.firing}</span>` : 0}${s.alerts.acknowledged ? ` / ${s.alerts.acknowledged}` : ""}</td>
      <td class="num">${s.devices_offline}</td>
      <td><a href="/manage/${encodeURIComponent(s.id)}" target="_blank">管理台</a></td></tr>`).join("");
  }

  function renderDevices(list) {
    $("#device-count").textContent = `${list.length} 台`;
    $("#devices").innerHTML = HW.offlineDeviceRows(list);
  }

  function renderCases(list) {
    $("#case-count").textContent = `${list.length} 件`;
    $("#cases").innerHTML = list.length ? list.map((c) => `<tr class="overdue" data-case="${esc(c.no)}" data-site="${esc(c.site)}">
      <td>${esc(c.site_name)}</td><td>${esc(c.no)}</td><td>${esc(c.service_name)}</td>
      <td>${esc(c.agent_name || c.agent || "")}</td><td>${esc(c.passed_to || "")}</td><td>${esc(c.due_day)} ${HW.caseMark(c)}</td></tr>`).join("")
      : `<tr><td colspan="6" class="empty-note">没有超期办件</td></tr>`;
  }

  function renderRanking(r) {
    const rows = HW.rankingRows(r, 8, "今天没有空岗");
    $("#rank-windows").innerHTML = rows.windows;
    $("#rank-staff").innerHTML = rows.staff;
  }

  function renderAlerts() {
    const all = [...alerts.values()].sort((a, b) => (changedAt(a) < changedAt(b) ? 1 : -1));
    const shown = all.filter((a) => filter === "all" || a.state === filter).slice(0, 120);
    const firing = all.filter((a) => a.state === "firing").length;
    $("#alert-count").textContent = `今日 ${all.length} 条，${ALERT_STATE.firing} ${firing} 条`;
    alertsList.render(shown.length ? shown.map((a) => `
      <li class="${a.state}" data-alert="${esc(a.id)}" data-site="${esc(a.site)}">
        <span class="what"><span class="badge ${a.severity}">${esc(SEVERITY[a.severity] || a.severity)}</span>
          ${esc(a.site_name || siteName(a.site))} · ${esc(ALERT_KIND[a.kind] || a.kind)} · ${esc(a.subject_name || a.window_name || a.window || a.device || "")}
          <span class="badge ${a.state}">${esc(ALERT_STATE[a.state])}</span></span>
        <span class="meta">${esc(hm(a.since))} 起${a.until ? " 至 " + esc(hm(a.until)) : ""}${a.staff_name ? "，当班：" + esc(a.staff_name) : a.staff ? "，当班：" + esc(a.staff) : ""}${a.acknowledged_by ? "，" + esc(HW.operator(a.acknowledged_by)) + " " + esc(hm(a.acknowledged_at)) + " 确认" : ""}</span>
        ${alertAsks(a)}
        ${a.state === "firing" ? alertsList.form(a) : ""}
        ${a.note ? `<span class="note">说明：${esc(a.note)}</span>` : ""}
        <span class="error"></span>
      </li>`).join("") : `<li class="empty-note">没有告警</li>`);
  }

  $("#tabs").addEventListener("click", (e) => {
    if (!e.target.dataset.f) return;
    filter = e.target.dataset.f;
    for (const b of $("#tabs").children) b.classList.toggle("on", b === e.target);
    renderAlerts();
  });


  async function load() {
    const s = await api("/api/v1/supervise");
    clock.sync(s.now_ms);
    sites = s.sites;
    alerts = new Map(s.alerts.map((a) => [a.id, a]));
    renderSites();
    renderDevices(s.devices_offline);
    renderRanking(s.ranking);
    renderAlerts();
    tick();
    renderCases((await api("/api/v1/cases")).cases);
  }

  function reloadSoon() {
    if (reloadTimer) return;
    reloadTimer = setTimeout(() => { reloadTimer = null; load().catch(() => {}); }, 2000);
  }

  live("/api/v1/supervise/stream", {
    alert: (a) => { alerts.set(a.id, { ...alerts.get(a.id), ...a }); renderAlerts(); reloadSoon(); },
    window: () => reloadSoon(),
    queue: () => reloadSoon(),
    device: () => reloadSoon(),
  }, { onOpen: () => load().catch(() => {}), onState: connection($("#conn")) });

  const tick = () => { $("#clock").textContent = clockText(clock.now(), "Asia/Shanghai").time; };
  setInterval(tick, 500);
  tick();
  setInterval(() => load().catch(() => {}), 60000);
})();
