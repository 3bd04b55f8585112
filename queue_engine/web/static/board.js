/* The hall's TV board: now calling, the last calls, waiting per service, the time; every
   call announced aloud in Mandarin, one after another (never cutting each other off). */
"use strict";

(() => {
  const { $, esc, api, clock, live, hm, clockText, connection } = HW;
  const site = document.body.dataset.site;
  const params = new URLSearchParams(location.search);
  let timeZone = "Asia/Shanghai";
  let recent = [];

  // What the page did, for the tests and for anyone debugging a hall's screen.
  const record = (window.hallwatch = { rendered: [], announced: [], chimes: [] });

  // -- the voice ---------------------------------------------------------------------------
  // The board speaks "请 A012 号 到 3号窗口 办理" through the browser's speech synthesis,
  // in a zh-CN voice. Announcements wait in a queue: the next is handed over only when the
  // previous one has ended, so two calls close together never cut each other off. Where
  // no Chinese voice exists, a chime (WebAudio) plays instead.
  const speech = { queue: [], busy: false, guard: null };
  let audio = null;

  function chineseVoice() {
    const synth = window.speechSynthesis;
    if (!synth || typeof synth.getVoices !== "function") return null;
    const voices = synth.getVoices() || [];
    return voices.find((v) => /^zh[-_]CN/i.test(v.lang)) || voices.find((v) => /^zh/i.test(v.lang)) || null;
  }

  function chime() {
    return new Promise((resolve) => {
      try {
        const Context = window.AudioContext || window.webkitAudioContext;
        audio = audio || new Context();
        if (audio.state === "suspended") audio.resume();
        const t = audio.currentTime + 0.05;
        [[784, 0], [659, 0.45]].forEach(([freq, offset]) => {   // 叮-咚
          const osc = audio.createOscillator();
          const gain = audio.createGain();
          osc.type = "sine";
          osc.frequency.value = freq;
          gain.gain.setValueAtTime(0.0001, t + offset);
          gain.gain.exponentialRampToValueAtTime(0.5, t + offset + 0.02);
          gain.gain.exponentialRampToValueAtTime(0.0001, t + offset + 0.7);
          osc.connect(gain).connect(audio.destination);
          osc.start(t + offset);
          osc.stop(t + offset + 0.75);
        });
      } catch (_) { /* no audio device: the screen still shows the call */ }
      setTimeout(resolve, 1300);
    });
  }

  const spokenWindow = (name) => name.replace(/（[^）]*）|\([^)]*\)/g, "").trim();
  const sentence = (call) => `请 ${call.ticket} 号 到 ${spokenWindow(call.window_name)} 办理`;

  function announce(call) {
    speech.queue.push(sentence(call));
    pump();
  }

  function pump() {
    if (speech.busy || speech.queue.length === 0) return;
    const text = speech.queue.shift();
    speech.busy = true;
    let finished = false;
    const done = () => {
      if (finished) return;
      finished = true;
      clearTimeout(speech.guard);
      speech.busy = false;
      setTimeout(pump, 400); // a breath between two announcements
    };
    const voice = chineseVoice();
    const synth = window.speechSynthesis;
    if (!voice || !synth || typeof window.SpeechSynthesisUtterance !== "function") {
      record.chimes.push(text);
      chime().then(done);
      return;
    }
    const utterance = new SpeechSynthesisUtterance(text);
    utterance.lang = "zh-CN";
    try { utterance.voice = voice; } catch (_) { /* lang alone picks it */ }
    utterance.rate = 0.9;
    utterance.onend = done;
    utterance.onerror = done;
    // Should a speech engine never report the end, go on after a generous while; the
    // browser queues utterances itself, so even then nothing is cut off.
    speech.guard = setTimeout(done, 4000 + 400 * text.length);
    record.announced.push(text);
    synth.speak(utterance);
  }

  // Browsers start sound only after a user gesture, unless the kiosk runs Chromium with
  // --autoplay-policy=no-user-gesture-required (docs/api.md). One tap on the screen does it.
  const soundButton = $("#sound");
  if (params.has("kiosk")) soundButton.hidden = true;
  document.addEventListener("click", () => {
    soundButton.hidden = true;
    chime();
    if (window.speechSynthesis && typeof SpeechSynthesisUtterance === "function" && chineseVoice()) {
      const hello = new SpeechSynthesisUtterance("语音播报已开启");
      hello.lang = "zh-CN";
      window.speechSynthesis.speak(hello);
    }
  }, { once: true });
  if (window.speechSynthesis && typeof window.speechSynthesis.addEventListener === "function") {
    window.speechSynthesis.addEventListener("voiceschanged", () => {});
  }

  // -- the screen ----------------------------------------------------------------------------
  function showNow(call, fresh) {
    $("#now-ticket").textContent = call.ticket;
    const where = $("#now-window");
    where.textContent = `请到 ${call.window_name} 办理`;
    where.classList.toggle("long", call.window_name.length > 8);
    if (fresh) {
      const now = $("#now");
      now.classList.remove("flash");
      void now.offsetWidth; // restart the animation
      now.classList.add("flash");
    }
  }

  function renderRecent() {
    $("#recent").innerHTML = recent.slice(0, 6).map((c, i) => `
      <li class="${i === 0 ? "latest" : ""}"><span class="no">${esc(c.ticket)}</span>
      <span class="win">${esc(spokenWindow(c.window_name))}</span>
      <span class="at">${c.recall ? "重呼 " : ""}${esc(hm(c.at))}</span></li>`).join("");
  }

  function renderQueue(queue) {
    $("#waiting-total").textContent = `（共 ${queue.waiting} 人）`;
    $("#services").innerHTML = queue.services.map((s) => `
      <div class="tile ${s.waiting ? "" : "empty"}">
        <div class="name"><span class="prefix">${esc(s.prefix)}</span>${esc(s.name)}</div>
        <div class="count">${s.waiting}<small>人</small></div>
        <div class="eta">${s.waiting ? `约 ${s.eta_min} 分钟` : "无需等候"}</div>
      </div>`).join("");
  }

  function onCall(call) {
    showNow(call, true);
    recent = [call, ...recent.filter((c) => !(c.ticket === call.ticket && !call.recall))].slice(0, 12);
    renderRecent();
    record.rendered.push({ ticket: call.ticket, window: call.window, recall: call.recall,
                           at: performance.timeOrigin + performance.now() });
    announce(call);
  }

  async function load() {
    const snapshot = await api(`/api/v1/sites/${encodeURIComponent(site)}/board`);
    timeZone = snapshot.site.timezone;
    clock.sync(snapshot.now_ms);
    recent = snapshot.calls;
    if (recent.length) showNow(recent[0], false);
    renderRecent();
    renderQueue(snapshot.queue);
  }

  function tick() {
    const { date, time } = clockText(clock.now(), timeZone);
    $("#date").textContent = date;
    $("#time").textContent = time;
  }

  setInterval(tick, 250);
  tick();
  live(`/api/v1/sites/${encodeURIComponent(site)}/stream`,
       { call: onCall, queue: renderQueue },
       { onOpen: () => load().catch(() => {}), onState: connection($("#conn")) });
})();
