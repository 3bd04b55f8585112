/* The site's page on a phone (/s/{site}, /take/{site}): its queues, its services with their
   办事指南, taking a number (then the slip's page follows it), looking a number up. */
"use strict";

(() => {
  const { $, esc, api } = HW;
  const base = `/api/v1/sites/${encodeURIComponent(document.body.dataset.site)}`;
  let services = [];
  let watching = null;
  let timer = null;

  function showGuide() {
    const s = services.find((x) => x.code === $("#service").value);
    if (!s) return;
    const g = s.guide;
    $("#guide").innerHTML = `办理时限：${esc(g.time_limit)}；收费：${esc(g.fee)}<br>申请材料：${g.materials.map(esc).join("；")}`;
  }

  async function follow(no) {
    watching = no;
    clearTimeout(timer);
    try {
      const t = await api(`${base}/tickets/${encodeURIComponent(no)}`);
      $("#ticket").hidden = false;
      $("#no").textContent = t.no;
      $("#status").textContent = t.status === "waiting"
        ? `${t.service_name}：前面还有 ${t.ahead} 人，预计等候约 ${t.eta_min} 分钟`
        : `${t.status_text}${t.window_name ? "，请到 " + t.window_name : ""}`;
      if (t.status === "waiting" || t.status === "called") timer = setTimeout(() => follow(no), 15000);
    } catch (e) {
      $("#ticket").hidden = false;
      $("#no").textContent = no;
      $("#status").textContent = e.message;
    }
  }

  $("#take").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("#error").textContent = "";
    try {
      const { ticket } = await api(`${base}/tickets`, { json: { service: $("#service").value, phone: $("#phone").value.trim() } });
      localStorage.setItem(`hallwatch.ticket.${base}`, ticket.no);
      if (ticket.token) {
        location.assign(`/t/${encodeURIComponent(ticket.site)}/${encodeURIComponent(ticket.token)}`);
        return;
      }
      follow(ticket.no);
    } catch (err) {
      $("#error").textContent = err.message;
    }
  });
  $("#lookup").addEventListener("submit", (e) => {
    e.preventDefault();
    const no = $("#lookup-no").value.trim().toUpperCase();
    if (no) follow(no);
  });

  const guideText = (g) => `办理条件：${esc(g.conditions)}<br>申请材料：${g.materials.map(esc).join("；")}<br>`
    + `办理时限：${esc(g.time_limit)}；收费：${esc(g.fee)}；${esc(g.item_type)}<br>办事依据：${esc(g.basis)}`;

  api(`${base}/queue`).then((q) => {
    $("#queue").innerHTML = q.services.map((s) => `<tr><td>${esc(s.prefix)} · ${esc(s.name)}</td>`
      + `<td class="num">${s.waiting}</td><td class="num">${s.eta_min} 分钟</td></tr>`).join("");
  });

  api(`${base}/services`).then((r) => {
    services = r.services;
    $("#guides").innerHTML = services.map((s) => `<details><summary>${esc(s.name)}</summary>`
      + `<div class="guide">${guideText(s.guide)}<br>办理窗口：${s.windows.map(esc).join("、")}</div></details>`).join("");
    $("#service").innerHTML = services.map((s) => `<option value="${esc(s.code)}">${esc(s.prefix)} · ${esc(s.name)}</option>`).join("");
    $("#service").addEventListener("change", showGuide);
    showGuide();
    const mine = localStorage.getItem(`hallwatch.ticket.${base}`);
    if (mine) follow(mine);
  });
})();
