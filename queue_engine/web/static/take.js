/* Take a number from a phone, and follow one's place in the queue. */
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

  api(`${base}/services`).then((r) => {
    services = r.services;
    $("#service").innerHTML = services.map((s) => `<option value="${esc(s.code)}">${esc(s.prefix)} · ${esc(s.name)}</option>`).join("");
    $("#service").addEventListener("change", showGuide);
    showGuide();
    const mine = localStorage.getItem(`hallwatch.ticket.${base}`);
    if (mine) follow(mine);
  });
})();
