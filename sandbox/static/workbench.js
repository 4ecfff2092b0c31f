// 工作台: the organization's H5 apps. A tile opens the app's homepage in a new tab as the current person
// (…?as=<userId>; the emulator's JSAPI stand-in turns that into 免登 codes for the page).

import { getJSON } from "./api.js";
import { escapeHtml } from "./markdown.js";

function tileHtml(app) {
  const inner = `<span class="wb-icon" aria-hidden="true">${escapeHtml(app.initials)}</span>
    <span class="wb-name">${escapeHtml(app.name)}</span>`;
  if (app.launchUrl) {
    return `<li><a class="wb-app" href="${escapeHtml(app.launchUrl)}" target="_blank" rel="noopener"
      title="${escapeHtml(app.homepage)}">${inner}</a></li>`;
  }
  return `<li><span class="wb-app is-disabled" title="尚未登记首页地址">${inner}
    <span class="wb-note">未配置首页</span></span></li>`;
}

export class Workbench {
  // hooks: {user() -> user id, toast(text, isError)}
  constructor(hooks) {
    this.hooks = hooks;
    this.root = document.getElementById("workbench-view");
  }

  async load() {
    const user = this.hooks.user();
    try {
      const answer = await getJSON("/apps", { user });
      if (user === this.hooks.user()) this.draw(answer);
    } catch (error) {
      this.hooks.toast(error.message, true);
    }
  }

  draw(answer) {
    const body = answer.canUse
      ? `<ul class="wb-grid" aria-label="应用">${answer.apps.map(tileHtml).join("")}</ul>
         <p class="wb-hint">点击应用会在新标签页中以当前身份打开其首页（免登）。机器人启动时登记首页地址；
           手动登记：<code>POST /sandbox/api/apps/homepage {"app", "url"}</code>。</p>`
      : `<p class="wb-hint">只有本组织的成员能使用工作台应用（外部联系人、个人用户和已离职的人不能）。</p>`;
    this.root.innerHTML = `<div class="wb-inner"><header class="todos-head"><h1>工作台</h1></header>${body}</div>`;
  }
}
