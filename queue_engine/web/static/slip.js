/* A slip on the phone (/t/{site}/{token}): the number, its place in the queue, live; the
   window when it is called (with a vibration and a notification where the browser allows);
   the 好差评 form once the visit is finished. */
"use strict";

(() => {
  const { $, esc, api, live, connection, hm } = HW;
  const WORDS = typeof HW_WORDS === "undefined" ? {} : HW_WORDS;
  const PRIORITY = WORDS.priority || {};
  const CHECK = WORDS.priority_check || {};
  const { site, token } = document.body.dataset;
  const base = `/api/v1/sites/${encodeURIComponent(site)}/slips/${encodeURIComponent(token)}`;
  const form = $("#rate");
  const values = HW_RATING.build(form);
  let calledAt = null;
  let rated = false;

  function notify(t) {
    if (navigator.vibrate) navigator.vibrate([400, 200, 400]);
    if (window.Notification && Notification.permission === "granted") {
      try { new Notification(`请到 ${t.window_name} 办理`, { body: `${t.no} ${t.service_name}`, tag: t.no }); } catch (_) { /* (some browsers only from a service worker) */ }
    }
  }

  function render(t) {
    $("#no").textContent = t.no;
    $("#service").textContent = t.service_name;
    const called = t.status === "called" || t.status === "serving";
    let state;
    if (t.status === "reserved") {
      state = `<b>待签到</b>：到大厅后扫描入口的签到二维码，或在取号机输入签到码`
        + `<div class="code">签到码 <b>${esc(t.check_in_code)}</b></div>`
        + `<small>请于 ${esc(hm(t.reserved_until))} 前签到，逾期作废；签到后前面约 ${t.ahead} 人</small>`;
    } else if (t.status === "waiting") {
      state = t.ahead === 0 ? "您是下一位，请留意叫号" : `前面还有 <b>${t.ahead}</b> 人，预计等候约 <b>${t.eta_min}</b> 分钟`;
    } else if (t.status === "done") {
      state = `已办结${t.window_name ? "（" + esc(t.window_name) + (t.staff_name ? " " + esc(t.staff_name) : "") + "）" : ""}`;
    } else {
      state = esc(t.status_text);
    }
    if (t.priority_claim) {
      const word = CHECK[t.priority_check] || "";
      state += `<div class="claim">优先办理申请（${esc(PRIORITY[t.priority_claim] || t.priority_claim)}）：${esc(word)}</div>`;
    }
    $("#state").innerHTML = state;
    $("#called").hidden = !called;
    if (called) {
      $("#called-window").textContent = t.window_name || "";
      if (t.status === "called" && t.called_at !== calledAt) {
        calledAt = t.called_at;
        notify(t);
      }
    }
    $("#notify").hidden = !(window.Notification && Notification.permission === "default" && t.status === "waiting");
    form.hidden = !(t.ratable && !rated);
    if (t.ratable) $("#served-by").textContent = `${t.window_name || ""}${t.staff_name ? " · " + t.staff_name : ""}`;
    if (t.rating && !rated) {
      $("#rated").hidden = false;
      $("#rated").innerHTML = HW_RATING.thanks({ score: t.rating });
    }
  }

  $("#notify").addEventListener("click", async () => {
    try { await Notification.requestPermission(); } catch (_) { /* refused */ }
    $("#notify").hidden = true;
  });

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    $("#rate-error").textContent = "";
    try {
      const { rating } = await api(`${base}/rating`, { json: values() });
      rated = true;
      form.hidden = true;
      $("#rated").hidden = false;
      $("#rated").innerHTML = HW_RATING.thanks(rating);
    } catch (err) {
      $("#rate-error").textContent = err.message;
    }
  });

  // Remembered on this phone, so that the hall entrance's check-in code (/c/{site}) finds it.
  const saved = `hallwatch.slips.${site}`;
  const mine = JSON.parse(localStorage.getItem(saved) || "[]").filter((x) => x !== token);
  localStorage.setItem(saved, JSON.stringify([token, ...mine].slice(0, 5)));

  api(base).then(render).catch((err) => { $("#error").textContent = err.message; $("#state").textContent = ""; });
  live(`${base}/stream`, { ticket: render }, { onState: connection($("#conn")) });
})();
