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

  const ALERT_KIND = {
    window_unstaffed: "窗口空岗", window_not_opened: "窗口未按时开窗", pause_overrun: "暂停超时",
    device_offline: "设备离线", device_shutdown: "设备被关闭", camera_tamper: "摄像头遮挡/移位",
    wait_too_long: "等候超时", queue_surge: "排队激增", bad_rating: "差评待回访", unauthorized: "非法设备接入",
  };
  const ALERT_STATE = { firing: "告警中", acknowledged: "已确认", resolved: "已解除" };
  const SEVERITY = { critical: "严重", warning: "一般" };
  const PAUSE_REASON = { break: "短暂休息", meal: "用餐", meeting: "开会", fieldwork: "外出办事", other: "其他" };
  const DEVICE_KIND = { kiosk: "取号机", panel: "叫号器", camera: "监察摄像头", pad: "评价器", display: "显示屏", selfservice: "自助终端" };
  /** "supervisor:张科长" -> "张科长（监察室）". */
  function operator(by) {
    if (!by) return "";
    const [role, ...rest] = by.split(":");
    const name = rest.join(":");
    const title = { supervisor: "监察室", manager: "中心管理" }[role];
    return title ? (name ? `${name}（${title}）` : title) : by;
  }
  const OFFLINE_REASON = { lost: "断线", shutdown: "被关机", silent: "心跳中断" };

  /** What a window is doing, in words, with a CSS class. */
  function windowStatus(w) {
    if (w.state === "closed") return ["未开窗", "closed"];
    if (w.state === "paused") {
      const reason = PAUSE_REASON[w.pause_reason] || "暂停";
      return [`暂停（${reason}${w.paused_since ? "，" + hm(w.paused_since) + "起" : ""}）`, "paused"];
    }
    if (w.staffing === "unstaffed") return ["空岗（无人在座）", "unstaffed"];
    const verify = w.staffing === "unverified" ? "（无法核验）" : "";
    if (w.state === "serving") return [`办理中${verify}`, "serving"];
    if (w.state === "called") return [`呼叫中${verify}`, "called"];
    return [`开放，等待叫号${verify}`, "open"];
  }

  return { operator, $, esc, api, clock, live, hms, hm, minutes, clockText, connection, windowStatus,
           ALERT_KIND, ALERT_STATE, SEVERITY, PAUSE_REASON, DEVICE_KIND, OFFLINE_REASON };
})();
