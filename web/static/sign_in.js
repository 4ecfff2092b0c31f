// 免登: ask DingTalk's JSAPI for a temporary auth code, let the server exchange it, then reload this page.
(function () {
  "use strict";
  var box = document.getElementById("sign-in");
  var status = document.getElementById("sign-in-status");
  var retry = document.getElementById("sign-in-retry");
  var attempts = 0;

  function say(text, canRetry) {
    status.textContent = text;
    retry.hidden = !canRetry;
  }

  function exchange(code) {
    return fetch(box.dataset.endpoint, {
      method: "POST",
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": box.dataset.csrf},
      body: JSON.stringify({code: code})
    }).then(function (response) {
      return response.json().then(function (body) {
        if (response.ok) {
          say("已登录：" + body.name + "，正在打开……", false);
          window.location.reload();
          return;
        }
        if (body.retry && attempts < 2) { signIn(); return; }   // a used or expired code: ask for a new one
        say(body.error || "登录失败，请稍后再试。", response.status !== 403);
      });
    }).catch(function () { say("网络异常，登录失败。", true); });
  }

  function signIn() {
    attempts += 1;
    if (typeof dd === "undefined") {
      say("无法加载钉钉 JSAPI：请在钉钉工作台中打开项目看板。", true);
      return;
    }
    if (dd.env && dd.env.platform === "notInDingTalk") {
      say("请在钉钉里打开：工作台 → 项目看板。", false);
      return;
    }
    dd.ready(function () {
      dd.requestAuthCode({
        corpId: box.dataset.corpId || new URLSearchParams(window.location.search).get("corpid") || "",
        clientId: box.dataset.clientId,
        onSuccess: function (result) { exchange(result.code); },
        onFail: function (error) {
          say("钉钉未能完成免登（" + (error && (error.errorMessage || error.errorCode) || "未知原因") + "）。", true);
        }
      });
    });
  }

  retry.addEventListener("click", function () { attempts = 0; say("正在通过钉钉登录……", false); signIn(); });
  signIn();
})();
