"use strict";
HW.api("/api/v1/sites").then(({ sites }) => {
  HW.$("#sites").innerHTML = sites.map((s) => {
    const id = encodeURIComponent(s.id);
    return `<li><b>${HW.esc(s.name)}</b>：<a href="/board/${id}">叫号大屏</a> · <a href="/take/${id}">手机取号</a> · <a href="/manage/${id}">管理控制台</a></li>`;
  }).join("");
}).catch((e) => { HW.$("#sites").innerHTML = `<li class="error">${HW.esc(e.message)}</li>`; });
