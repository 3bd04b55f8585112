/* The manager console of one site: queues, windows, today's figures, the day's chart, open
   alerts with acknowledgement. Live over SSE; figures reloaded shortly after each change. */
"use strict";

(() => {
  const { $, esc, api, clock, live, alertList, alertAsks, hm, minutes, clockText, connection, windowStatus,
          ALERT_KIND, ALERT_STATE, SEVERITY, STAFFING, VACANCY, WINDOW_MARK } = HW;
  const site = document.body.dataset.site;
  const base = `/api/v1/sites/${encodeURIComponent(site)}`;
  let timeZone = "Asia/Shanghai";
  let windows = new Map();
  let alerts = new Map();
  let reloadTimer = null;
  const by = $("#by");
  const alertsList = alertList($("#alerts"), (li) => `${base}/alerts/${encodeURIComponent(li.dataset.alert)}`, by,
                               (alert) => { alerts.set(alert.id, alert); renderAlerts(); });
  by.value = localStorage.getItem("hallwatch.by") || "";
  by.addEventListener("change", () => localStorage.setItem("hallwatch.by", by.value.trim()));

  function renderFigures(f) {
    const r = f.ratings;
    const cards = [
      ["今日取号", f.issued, `其中手机 ${f.phone_tickets}`],
      ["已办结", f.served, ""],
      ["过号", f.no_shows, ""],
      ["正在等候", f.waiting, `办理中 ${f.in_service}`],
      ["平均等候", f.wait_avg_min ?? "—", "分钟"],
      ["90% 等候不超过", f.wait_p90_min ?? "—", "分钟"],
      ["好差评", r.average ?? "—", r.count ? `${r.count} 条，满意 ${r.satisfied_pct}%` : "暂无评价"],
      ["差评", r.bad, "条"],
    ];
    $("#figures").innerHTML = cards.map(([k, v, s]) =>
      `<div class="figure"><div class="k">${esc(k)}</div><div class="v">${esc(v)}<small>${esc(s)}</small></div></div>`).join("");
  }

  /** Today's 空岗 minutes: the total, and each category in the cell's title. */
  function vacancyCell(v) {
    if (!v) return "";
    const parts = Object.keys(VACANCY).map((c) => `${VACANCY[c]} ${v[c]} 分`).join("，");
    return `<span title="${esc(parts)}" data-vacancy="${esc(JSON.stringify(v))}">${esc(v.total)} 分</span>`;
  }

  /** A window no camera watches: nobody can tell whether its seat is taken, and it never
      raises window_unstaffed (hallwatch check-config warns of it too). */
  const noCamera = (w) => (w.camera === false
    ? ` <span class="badge no-camera" title="${esc(`不会产生“${ALERT_KIND.window_unstaffed}”告警`)}">${esc(WINDOW_MARK.no_camera)}</span>`
    : "");

  function renderWindows() {
    const rows = [...windows.values()];
    const counts = {};
    $("#windows").innerHTML = rows.map((w) => {
      const [text, cls] = windowStatus(w);
      counts[w.staffing] = (counts[w.staffing] || 0) + 1;
      return `<tr class="${cls}" data-window="${esc(w.window)}"><td title="${esc(w.unit || "")}">${esc(w.window_name)}</td>
        <td><span class="badge ${cls}">${esc(text)}</span>${noCamera(w)}</td>
        <td>${esc(w.ticket || "")}</td><td>${esc(w.staff_name || "")}</td>
        <td class="num">${w.served_today}</td><td class="num">${vacancyCell(w.vacant_min)}</td></tr>`;
    }).join("");
    $("#window-counts").textContent = Object.keys(STAFFING).filter((s) => counts[s])
      .map((s) => `${STAFFING[s]} ${counts[s]}`).join(" · ");
  }

  function renderQueue(q) {
    $("#queue-total").textContent = `共 ${q.waiting} 人等候`;
    $("#queue").innerHTML = q.services.map((s) => `<tr><td><b>${esc(s.prefix)}</b> ${esc(s.name)}</td>
      <td class="num">${s.waiting}</td><td class="num">${s.priority_waiting}</td>
      <td class="num">${s.waiting ? minutes(s.oldest_wait_s) : "—"}</td><td class="num">${s.waiting ? s.eta_min + " 分钟" : "—"}</td>
      <td class="num">${s.open_windows}</td></tr>`).join("");
  }

  function alertTitle(a) {
    const known = a.window && windows.get(a.window);
    const where = a.subject_name || a.window_name || (known && known.window_name) || a.window || a.device ||
      (a.detail && a.detail.service) || "";
    return `${ALERT_KIND[a.kind] || a.kind} · ${where}`;
  }

  function renderAlerts() {
    const open = [...alerts.values()].filter((a) => a.state !== "resolved")
      .sort((a, b) => (a.since < b.since ? 1 : -1));
    $("#alert-count").textContent = open.length ? `${open.length} 条` : "";
    alertsList.render(open.length ? open.map((a) => `
      <li class="${a.state}" data-alert="${esc(a.id)}">
        <span class="what"><span class="badge ${a.severity}">${esc(SEVERITY[a.severity] || a.severity)}</span>
          ${esc(alertTitle(a))} <span class="badge ${a.state}">${esc(ALERT_STATE[a.state])}</span></span>
        <span class="meta">${esc(hm(a.since))} 起${a.staff_name ? "，当班：" + esc(a.staff_name) : ""}${a.acknowledged_by ? "，" + esc(HW.operator(a.acknowledged_by)) + " 已确认" : ""}</span>
        ${alertAsks(a)}
        ${a.state === "firing" ? alertsList.form(a) : ""}
        ${a.note ? `<span class="note">说明：${esc(a.note)}</span>` : ""}
        <span class="error"></span>
      </li>`).join("") : `<li class="empty-note">没有未关闭的告警</li>`);
  }


  async function load() {
    const s = await api(`${base}/summary`);
    timeZone = s.site.timezone;
    clock.sync(s.now_ms);
    windows = new Map(s.windows.map((w) => [w.window, w]));
    alerts = new Map(s.alerts.map((a) => [a.id, a]));
    renderFigures(s.figures);
    renderWindows();
    renderQueue(s.queue);
    renderAlerts();
    tick();
    $("#chart").innerHTML = hwDayChart(s.series);
  }

  // Figures, the chart and unstaffed minutes follow from many events: reload them at most
  // every few seconds rather than on each.
  function reloadSoon() {
    if (reloadTimer) return;
    reloadTimer = setTimeout(() => { reloadTimer = null; load().catch(() => {}); }, 2000);
  }

  live(`${base}/manage/stream`, {
    window: (w) => { windows.set(w.window, { ...windows.get(w.window), ...w }); renderWindows(); reloadSoon(); },
    queue: (q) => { renderQueue(q); reloadSoon(); },
    alert: (a) => { alerts.set(a.id, { ...alerts.get(a.id), ...a }); renderAlerts(); },
    call: () => reloadSoon(),
    device: () => reloadSoon(),
  }, { onOpen: () => load().catch(() => {}), onState: connection($("#conn")) });

  const tick = () => { $("#clock").textContent = clockText(clock.now(), timeZone).time; };
  setInterval(tick, 500);
  tick();
  setInterval(() => load().catch(() => {}), 60000);
})();
