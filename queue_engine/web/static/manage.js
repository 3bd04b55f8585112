/* The manager console of one site: queues, windows, today's figures, the day's chart, open
   alerts with acknowledgement, open cases (办件) by due date with their events. Live over SSE;
   figures and cases reloaded shortly after each change. */
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

  // Each case's form: what the text field is for, by action (the API's field of that name).
  const CASE_ACTIONS = { note: ["进展", "note"], pass_on: ["转交", "to"], complete: ["办结", "result"],
                         return: ["退回", "note"], withdraw: ["撤回", "note"] };
  const CASE_HINT = { note: "进展情况", to: "转往的部门或上级", result: "办理结果" };

  const CASES_SHOWN = 200;  // (the soonest due: a busy hall may hold many more open cases)

  function renderCases(list) {
    const more = list.length > CASES_SHOWN ? `，仅列最早到期的 ${CASES_SHOWN} 件` : "";
    $("#case-count").textContent = `${list.length} 件，超期 ${list.filter((c) => c.mark === "overdue").length} 件${more}`;
    $("#cases").innerHTML = list.length ? list.slice(0, CASES_SHOWN).map((c) => `<tr data-case="${esc(c.no)}" class="${c.mark === "overdue" ? "overdue" : ""}">
      <td>${esc(c.no)}</td><td>${esc(HW.CASE_KIND[c.kind] || c.kind)}</td><td>${esc(c.service_name)}</td>
      <td>${esc(c.window_name || c.window || "")}</td><td>${esc(c.agent_name || c.agent || "")}</td><td>${esc(c.passed_to || "")}</td>
      <td>${esc((c.opened_at || "").slice(0, 16).replace("T", " "))}</td><td data-due-day>${esc(c.due_day)}</td><td>${HW.caseMark(c)}</td>
      <td><form class="case-form"><select name="action">${Object.entries(CASE_ACTIONS).map(([a, [label]]) => `<option value="${a}">${label}</option>`).join("")}</select>
        <input name="text" maxlength="100" placeholder="${CASE_HINT.note}"><button type="submit">提交</button><span class="error"></span></form></td></tr>`).join("")
      : `<tr><td colspan="10" class="empty-note">没有在办办件</td></tr>`;
  }

  $("#cases").addEventListener("change", (e) => {
    if (e.target.name === "action") e.target.form.text.placeholder = CASE_HINT[CASE_ACTIONS[e.target.value][1]];
  });
  $("#cases").addEventListener("submit", async (e) => {
    e.preventDefault();
    const form = e.target;
    const [, field] = CASE_ACTIONS[form.action.value];
    const no = form.closest("tr").dataset.case;
    form.querySelector("button").disabled = true;
    try {
      await api(`${base}/cases/${encodeURIComponent(no)}/events`,
                { json: { action: form.action.value, [field]: form.text.value, by: by.value.trim() } });
      await loadCases(true);
    } catch (err) {
      form.querySelector("button").disabled = false;
      form.querySelector(".error").textContent = err.message;
    }
  });

  async function loadCases(force = false) {
    const answer = await api(`${base}/cases`);
    const active = document.activeElement;
    const typing = active && active.name === "text" && active.value && $("#cases").contains(active);
    if (force || !typing) renderCases(answer.cases);  // (not over a note being written)
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
    await loadCases();
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
    alert: (a) => { alerts.set(a.id, { ...alerts.get(a.id), ...a }); renderAlerts(); if (a.kind === "case_overdue") reloadSoon(); },
    call: () => reloadSoon(),
    device: () => reloadSoon(),
  }, { onOpen: () => load().catch(() => {}), onState: connection($("#conn")) });

  const tick = () => { $("#clock").textContent = clockText(clock.now(), timeZone).time; };
  setInterval(tick, 500);
  tick();
  setInterval(() => load().catch(() => {}), 60000);
})();
