/* hallwatch: what every page shares. No library, no network beyond this server. */
"use strict";

const HW = (() => {
  const $ = (selector, root = document) => root.querySelector(selector);
  const esc = (value) => String(value ?? "").replace(/[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));

  /** fetch JSON from this server; an error carries the API's {error, message}. */
  async function api(path, { json, method } = {}) {
    const init = { credentials: "same-origin", headers: { Accept: "application/json" }, method: method || "GET" };
    if (json !== undefined) {
      init.method = method || "POST";
      init.body = JSON.stringify(json);
      init.headers["Content-Type"] = "application/json";
    }
    const response = await fetch(path, init);
    let body = null;
    try { body = await response.json(); } catch (_) { body = null; }
    if (!response.ok) {
      const error = new Error((body && body.message) || response.statusText);
      error.status = response.status;
      error.body = body;
      throw error;
    }
    return body;
  }

  /** The engine's clock (it may run faster than real time in a simulation). */
  const clock = {
    base: Date.now(), at: performance.now(), speed: 1,
    sync(nowMs, speed) { this.base = nowMs; this.at = performance.now(); if (speed) this.speed = speed; },
    now() { return this.base + (performance.now() - this.at) * this.speed; },
  };

  /**
   * Live updates over Server-Sent Events. EventSource reconnects by itself after a network
   * error; when the server refused the stream (it is then CLOSED) we try again later.
   * onOpen runs on every (re)connection: reload the page's state then.
   */
  function live(url, handlers, { onOpen, onState } = {}) {
    let retry = null;
    const connect = () => {
      const source = new EventSource(url);
      source.onopen = () => { if (onState) onState(true); if (onOpen) onOpen(); };
      source.onerror = () => {
        if (onState) onState(false);
        if (source.readyState === EventSource.CLOSED) {
          clearTimeout(retry);
          retry = setTimeout(connect, 3000);
        }
      };
      source.addEventListener("hello", (e) => {
        const hello = JSON.parse(e.data);
        clock.sync(hello.now_ms, hello.speed);
      });
      for (const [kind, handle] of Object.entries(handlers)) {
        source.addEventListener(kind, (e) => handle(JSON.parse(e.data)));
      }
    };
    connect();
  }

  /** "09:12:05" from an ISO time written in the site's own UTC offset. */
  const hms = (iso) => (iso ? iso.slice(11, 19) : "");
  const hm = (iso) => (iso ? iso.slice(11, 16) : "");
  const minutes = (seconds) => (seconds == null ? "—" : `${Math.round(seconds / 60)} 分钟`);

  function clockText(ms, timeZone) {
    const d = new Date(ms);
    const date = new Intl.DateTimeFormat("zh-CN", { timeZone, year: "numeric", month: "long", day: "numeric", weekday: "long" }).format(d);
    const time = new Intl.DateTimeFormat("zh-CN", { timeZone, hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false }).format(d);
    return { date, time };
  }

  function connection(element) {
    return (up) => {
      element.textContent = up ? "● 实时" : "○ 重新连接中…";
      element.className = up ? "conn up" : "conn down";
    };
  }

  // The product's one vocabulary, served by the engine as /vocabulary.js (core/vocabulary.py).
  const WORDS = typeof HW_WORDS === "undefined" ? {} : HW_WORDS;
  const ALERT_KIND = WORDS.alert_kind || {};
  const ALERT_STATE = WORDS.alert_state || {};
  const SEVERITY = WORDS.severity || {};
  const PAUSE_REASON = WORDS.pause_reason || {};
  const DEVICE_KIND = WORDS.device_kind || {};
  const STAFFING = WORDS.staffing || {};
  const VACANCY = WORDS.vacancy || {};
  const WINDOW_MARK = WORDS.window_mark || {};
  const ALERT_ASKS = WORDS.alert_asks || {};
  const FOLLOW_UP = WORDS.follow_up || {};
  /** "supervisor:张科长" -> "张科长（监察室）". */
  function operator(by) {
    if (!by) return "";
    const [role, ...rest] = by.split(":");
    const name = rest.join(":");
    const title = { supervisor: "监察室", manager: "中心管理", county: "县监察中心" }[role];
    return title ? (name ? `${name}（${title}）` : title) : by;
  }
  const OFFLINE_REASON = WORDS.offline_reason || {};
  const CASE_KIND = WORDS.case_kind || {};
  const CASE_MARK = WORDS.case_mark || {};
  /** An open case's mark (before, on or after its due day) as a badge. */
  const caseMark = (c) => `<span class="badge ${{ overdue: "critical", due_today: "warning" }[c.mark] || "open"}" data-mark="${esc(c.mark)}">${esc(CASE_MARK[c.mark] || c.mark)}</span>`;

  /** What a window is doing, in words, with a CSS class. */
  function windowStatus(w) {
    if (w.state === "closed") return [STAFFING[w.staffing] || STAFFING.closed, w.staffing === "not_opened" ? "not-opened" : "closed"];
    if (w.state === "paused") {
      const reason = PAUSE_REASON[w.pause_reason] || STAFFING.paused;
      return [`${STAFFING.paused}（${reason}${w.paused_since ? "，" + hm(w.paused_since) + "起" : ""}）`, "paused"];
    }
    if (w.staffing === "unstaffed") return [`空岗（${STAFFING.unstaffed}）`, "unstaffed"];
    const verify = w.staffing === "unverified" ? `（${STAFFING.unverified}）` : "";
    if (w.state === "serving") return [`办理中${verify}`, "serving"];
    if (w.state === "called") return [`呼叫中${verify}`, "called"];
    return [`开放，等待叫号${verify}`, "open"];
  }

  /** What an alert asks for beyond its kind: the windows a queue surge wants opened, a bad
      rating's follow-up day and, while it is not followed up, whether that day has passed. */
  function alertAsks(a) {
    const parts = [];
    const extra = a.kind === "queue_surge" && a.detail ? a.detail.extra_windows : null;
    if (extra > 0) {
      parts.push(`<span class="extra-windows" data-extra-windows="${esc(extra)}">${esc(ALERT_ASKS.extra_windows.replace("{n}", extra))}</span>`);
    }
    if (a.due_day) {
      parts.push(`<span class="due" data-due="${esc(a.due_day)}">${esc(ALERT_ASKS.follow_up_due.replace("{day}", a.due_day))}</span>`);
      if (a.overdue && a.state !== "resolved") parts.push(`<span class="badge critical overdue">${esc(FOLLOW_UP.overdue)}</span>`);
    }
    return parts.length ? `<span class="asks">${parts.join(" ")}</span>` : "";
  }

  /** The consoles' alert lists with their acknowledgement forms. A list is rendered again on
      every live update, so what an operator is typing (and where the caret is) is kept here
      and put back: render the list with `render(html)`, each open alert's form with `form(a)`.
      A form POSTs the note and the operator's name to `alertUrl(li)/acknowledge` and hands
      the updated alert to `updated`. */
  function alertList(list, alertUrl, by, updated) {
    const drafts = new Map();
    list.addEventListener("input", (e) => {
      const li = e.target.closest("li");
      if (li && e.target.name === "note") drafts.set(li.dataset.alert, e.target.value);
    });
    list.addEventListener("submit", async (e) => {
      e.preventDefault();
      const li = e.target.closest("li");
      const button = e.target.querySelector("button");
      button.disabled = true;
      try {
        const answer = await api(`${alertUrl(li)}/acknowledge`,
                                 { json: { note: e.target.note.value, by: by.value.trim() } });
        drafts.delete(li.dataset.alert);
        if (answer.alert) updated(answer.alert);
        else if (answer.pending) li.querySelector(".error").textContent = answer.message;  // (the county's: not answered yet)
      } catch (err) {
        button.disabled = false;
        li.querySelector(".error").textContent = err.message;
      }
    });
    function form(a) {
      const hint = a.kind === "bad_rating" ? "回访情况（必填）" : "处理说明（可选）";
      return `<form class="ack-form"><input name="note" maxlength="500" placeholder="${hint}" value="${esc(drafts.get(a.id) || "")}">
          <button class="ack" type="submit">确认</button></form>`;
    }
    function render(html) {
      const active = document.activeElement;
      const typing = active && active.name === "note" && list.contains(active) ? active.closest("li").dataset.alert : null;
      const caret = typing ? [active.selectionStart, active.selectionEnd] : null;
      list.innerHTML = html;
      const input = typing && [...list.querySelectorAll("li")].find((li) => li.dataset.alert === typing);
      const field = input && input.querySelector("input[name=note]");
      if (field) { field.focus(); field.setSelectionRange(...caret); }
    }
    return { form, render };
  }

  /** The supervision consoles' table of devices offline or impaired (tbody rows). */
  function offlineDeviceRows(list) {
    return list.length ? list.map((d) => `<tr>
      <td>${esc(d.site_name)}</td><td>${esc(d.device)}${d.window_name ? "<br><small>" + esc(d.window_name) + "</small>" : ""}</td>
      <td>${esc(DEVICE_KIND[d.kind] || d.kind)}</td>
      <td><span class="badge ${d.online === false ? "firing" : "paused"}">${esc(d.online === false ? (OFFLINE_REASON[d.reason] || "离线") : (d.tamper ? "画面异常" : "视频丢失"))}</span></td>
      <td>${esc(hm(d.since))}</td></tr>`).join("") : `<tr><td colspan="5" class="empty-note">全部在线</td></tr>`;
  }

  /** The 空岗 minutes of each category, then the total (the ranking's order). */
  const vacancyCells = (v) => Object.keys(VACANCY).map((c) => `<td class="num" data-category="${esc(c)}">${v[c]}</td>`).join("")
    + `<td class="num total">${v.total}</td>`;

  /** The supervision consoles' 空岗 ranking: {windows, staff} tbody rows. */
  function rankingRows(r, limit, none) {
    return {
      windows: r.windows.length ? r.windows.slice(0, limit).map((w, i) => `<tr>
      <td>${i + 1}</td><td>${esc(w.window_name)}</td><td>${esc(w.site_name)}</td><td>${esc(w.staff_name || "")}</td>
      ${vacancyCells(w.vacant_min)}</tr>`).join("") : `<tr><td colspan="8" class="empty-note">${esc(none)}</td></tr>`,
      staff: r.staff.length ? r.staff.slice(0, limit).map((s, i) => `<tr>
      <td>${i + 1}</td><td>${esc(s.staff_name)}</td><td>${esc(s.site_name)}</td>${vacancyCells(s.vacant_min)}</tr>`).join("")
        : `<tr><td colspan="7" class="empty-note">—</td></tr>`,
    };
  }

  return { offlineDeviceRows, rankingRows, operator, $, esc, api, clock, live, alertList, alertAsks, hms, hm, minutes, clockText, connection, windowStatus,
           ALERT_KIND, ALERT_STATE, SEVERITY, PAUSE_REASON, DEVICE_KIND, OFFLINE_REASON, STAFFING, VACANCY,
           WINDOW_MARK, CASE_KIND, caseMark };
})();
