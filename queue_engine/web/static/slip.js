/* A slip on the phone (/t/{site}/{token}): the number, its place in the queue, live; the
   window when it is called (with a vibration and a notification where the browser allows);
   the 好差评 form once the visit is finished. */
"use strict";

(() => {
  const { $, esc, api, live, connection } = HW;
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
    if (t.status === "waiting") {
      state = t.ahead === 0 ? "您是下一位，请留意叫号" : `前面还有 <b>${t.ahead}</b> 人，预计等候约 <b>${t.eta_min}</b> 分钟`;
    } else if (t.status === "done") {
      state = `已办结${t.window_name ? "（" + esc(t.window_name) + (t.staff_name ? " " + esc(t.staff_name) : "") + "）" : ""}`;
    } else {
      state = esc(t.status_text);
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

  api(base).then(render).catch((err) => { $("#error").textContent = err.message; $("#state").textContent = ""; });
  live(`${base}/stream`, { ticket: render }, { onState: connection($("#conn")) });
})();
