// A stand-in for DingTalk's `dingtalk-jsapi` (window.dd), served by the sandbox emulator at
// /__emulator/dingtalk-jsapi.js (P2 §5.3). Load it with a classic <script src> where the real page loads
// dingtalk-jsapi; it only talks to the emulator that served it.
//
// Who is "in DingTalk": the workbench of the sandbox chat page opens an app's homepage with ?as=<userId>.
// The script remembers that person for the tab (sessionStorage), so the page may drop the parameter from its
// URL once this script has run. Without a person (and without "DingTalk" in the user agent) the page is in an
// ordinary browser: dd.env.platform is "notInDingTalk" and requestAuthCode fails, as the real library does.
(function () {
  "use strict";

  var STORAGE_KEY = "dingtalk-sandbox-as";
  var UA_MARKER = " DingTalk/7.6.0";
  var script = document.currentScript;
  var emulator = script ? new URL(script.src, location.href).origin : location.origin;

  function chosenPerson() {
    var asked = new URLSearchParams(location.search).get("as");
    try {
      if (asked) sessionStorage.setItem(STORAGE_KEY, asked);
      return asked || sessionStorage.getItem(STORAGE_KEY) || "";
    } catch (error) {
      return asked || "";   // storage blocked: only the URL tells
    }
  }

  var person = chosenPerson();
  var inDingTalk = Boolean(person) || /dingtalk/i.test(navigator.userAgent);
  if (person && !/dingtalk/i.test(navigator.userAgent)) {
    // Pages that sniff the user agent (the official web-view sample does) see the client too, where the
    // browser lets a script redefine it. The HTTP User-Agent header cannot be changed from here.
    try {
      Object.defineProperty(navigator, "userAgent", { value: navigator.userAgent + UA_MARKER, configurable: true });
    } catch (error) { /* read-only in this browser: ?as= still identifies the person */ }
  }

  function failure(errorCode, errorMessage) {
    return { errorCode: errorCode, errorMessage: errorMessage };
  }

  // Resolves {code}; rejects {errorCode, errorMessage}. Calls whichever callbacks the caller passed
  // (onSuccess/onFail in H5, success/fail in mini programs).
  function requestCode(options, withClientId) {
    options = options || {};
    var promise;
    if (!inDingTalk) {
      promise = Promise.reject(failure(10001, "不在钉钉中：请从沙箱聊天页的「工作台」打开，或在地址后加 ?as=<userId>"));
    } else if (!person) {
      promise = Promise.reject(failure(10001, "沙箱里还没有选择身份：请从聊天页的「工作台」打开应用，或在地址后加 ?as=<userId>"));
    } else {
      var body = { userId: person, corpId: options.corpId || "" };
      if (withClientId) body.clientId = options.clientId || "";
      promise = fetch(emulator + "/__emulator/authcode", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      }).then(function (response) {
        return response.json().then(function (answer) {
          if (!response.ok) throw answer;
          return { code: answer.code, authCode: answer.code };
        });
      }, function () {
        throw failure(10000, "无法连接钉钉模拟器：" + emulator);
      });
    }
    var onSuccess = options.onSuccess || options.success;
    var onFail = options.onFail || options.fail;
    promise.then(function (result) { if (onSuccess) onSuccess(result); },
                 function (error) { if (onFail) onFail(error); });
    if (onFail) promise.catch(function () {});   // the callback handled it: no unhandled rejection
    return promise;
  }

  var readyCallbacks = [];
  var errorCallbacks = [];

  window.dd = {
    env: { platform: inDingTalk ? "pc" : "notInDingTalk", version: "7.6.0", language: "zh_CN" },
    version: "7.6.0",
    ready: function (callback) {
      readyCallbacks.push(callback);
      setTimeout(function () { while (readyCallbacks.length) readyCallbacks.shift()(); }, 0);
    },
    error: function (callback) { errorCallbacks.push(callback); },
    config: function () {},
    requestAuthCode: function (options) { return requestCode(options, true); },
    runtime: { permission: { requestAuthCode: function (options) { return requestCode(options, false); } } },
    // Mini programs only in DingTalk (§5.1); here it behaves like requestAuthCode with `success`/`fail`.
    getAuthCode: function (options) { return requestCode(options, true); },
    sandbox: { emulator: emulator, person: person },
  };
})();
