/* The hall entrance's check-in code (/c/{site}?k=…): the numbers this phone took for the site
   and has not checked in yet are checked in, then the slip's page follows the first. */
"use strict";

(() => {
  const { $, api } = HW;
  const { site, key } = document.body.dataset;
  const tokens = JSON.parse(localStorage.getItem(`hallwatch.slips.${site}`) || "[]");

  (async () => {
    let first = null;
    let problem = "";
    for (const token of tokens) {
      try {
        await api(`/api/v1/sites/${encodeURIComponent(site)}/slips/${encodeURIComponent(token)}/check-in`, { json: { key } });
        first = first || token;
      } catch (err) {
        if (err.status !== 409 && err.status !== 404) problem = err.message;
      }
    }
    if (first) {
      location.replace(`/t/${encodeURIComponent(site)}/${encodeURIComponent(first)}`);
      return;
    }
    $("#state").textContent = "本机没有待签到的手机取号。请打开手机取号后的号码页面再扫码，或在取号机输入签到码。";
    $("#error").textContent = problem;
  })();
})();
