/* A window's 好差评 poster (/w/{site}/{window}): rate the visit just finished at that window,
   or, when there is none, the visit of the number on one's slip. */
"use strict";

(() => {
  const { $, esc, api } = HW;
  const { site, window: windowId } = document.body.dataset;
  const base = `/api/v1/sites/${encodeURIComponent(site)}/windows/${encodeURIComponent(windowId)}`;
  const form = $("#rate");
  const values = HW_RATING.build(form);
  let askNumber = false;

  api(`${base}/visit`).then((w) => {
    $("#on-duty").textContent = w.staff_name ? `当前工作人员：${w.staff_name}` : "";
    askNumber = w.visit === null;
    $("#visit").innerHTML = w.visit
      ? `刚办结：<b>${esc(w.visit.ticket)}</b> ${esc(w.visit.service_name)}`
      : "请输入凭条上的号码后评价";
    $("#ask-number").hidden = !askNumber;
    form.hidden = false;
  }).catch((err) => { $("#visit").textContent = err.message; });

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    $("#rate-error").textContent = "";
    const body = values();
    const number = $("#ticket").value.trim().toUpperCase();
    if (askNumber || number) body.ticket = number;
    try {
      const { rating } = await api(`${base}/rating`, { json: body });
      form.hidden = true;
      $("#rated").hidden = false;
      $("#rated").innerHTML = `${esc(rating.ticket)} · ${HW_RATING.thanks(rating)}`;
    } catch (err) {
      if (err.body && err.body.error === "nothing_to_rate") { askNumber = true; $("#ask-number").hidden = false; }
      $("#rate-error").textContent = err.message;
    }
  });
})();
