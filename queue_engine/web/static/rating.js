/* The 好差评 form the phone pages share: five levels, and for 不满意 and 非常不满意 the
   national categories' reasons and a comment (the words from the vocabulary). */
"use strict";

const HW_RATING = (() => {
  const { $, esc } = HW;
  const WORDS = typeof HW_WORDS === "undefined" ? {} : HW_WORDS;
  const SCORE = WORDS.rating || {};
  const REASON = WORDS.rating_reason || {};
  const BAD = new Set([1, 2]);

  /** Fill the form (the levels, the reasons, a comment; a slip's number, hidden until asked
      for); returns a function that reads what the form holds, for the request. */
  function build(form) {
    form.innerHTML = `<h2>请对本次服务作出评价</h2><p id="served-by"></p>
      <div id="ask-number" hidden><label for="ticket">凭条上的号码</label>
        <input type="text" id="ticket" maxlength="8" placeholder="如 A012" autocomplete="off"></div>
      <div class="scores" id="scores"></div>
      <fieldset id="reasons" hidden><legend>不满意的原因（可多选）</legend><div id="reason-list"></div></fieldset>
      <label for="comment">意见和建议（选填）</label><textarea id="comment" maxlength="200" rows="3"></textarea>
      <button type="submit">提交评价</button>
      <div class="error" id="rate-error" role="alert"></div>`;
    $("#scores", form).innerHTML = [5, 4, 3, 2, 1].map((s) =>
      `<label><input type="radio" name="score" value="${s}" required><span>${esc(SCORE[s] || s)}</span></label>`).join("");
    $("#reason-list", form).innerHTML = Object.entries(REASON).map(([code, label]) =>
      `<label><input type="checkbox" name="reason" value="${esc(code)}"> ${esc(label)}</label>`).join("");
    form.addEventListener("change", () => {
      const score = Number((form.querySelector("input[name=score]:checked") || {}).value || 0);
      $("#reasons", form).hidden = !BAD.has(score);
    });
    return () => {
      const score = Number((form.querySelector("input[name=score]:checked") || {}).value || 0);
      const reasons = BAD.has(score) ? [...form.querySelectorAll("input[name=reason]:checked")].map((x) => x.value) : [];
      return { score, reasons, comment: $("#comment", form).value.trim() };
    };
  }

  const thanks = (rating) => `感谢您的评价：${esc(SCORE[rating.score] || rating.score)}`
    + (BAD.has(rating.score) ? "<br><small>我们会在规定时间内回访整改。</small>" : "");

  return { build, thanks, SCORE };
})();
