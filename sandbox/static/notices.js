// 工作通知: what apps sent the current person through asyncsend_v2, newest first, kept live by a long-poll.
// Opening the pane reads them (the app's getsendresult then lists the person under read_user_id_list).

import { postJSON } from "./api.js";
import { follow } from "./follow.js";
import { escapeHtml, renderMarkdown } from "./markdown.js";
import { formatTime } from "./messages.js";

function linkHtml(url, label, className) {
  return url
    ? `<a class="${className}" href="${escapeHtml(url)}" target="_blank" rel="noopener noreferrer">${escapeHtml(label)}</a>`
    : `<span class="${className} is-disabled">${escapeHtml(label)}</span>`;
}

function noticeHtml(notice) {
  const body = notice.markdown ? renderMarkdown(notice.text) : `<p>${escapeHtml(notice.text)}</p>`;
  const form = notice.form.length
    ? `<dl class="nt-form">${notice.form.map((f) => `<dt>${escapeHtml(f.key)}</dt><dd>${escapeHtml(f.value)}</dd>`).join("")}</dl>`
    : "";
  const buttons = notice.buttons.length
    ? `<div class="nt-buttons">${notice.buttons.map((b) => linkHtml(b.url, b.title, "nt-button")).join("")}</div>`
    : "";
  const more = notice.url && !notice.buttons.length ? linkHtml(notice.url, "查看详情", "nt-more") : "";
  return `<li class="nt${notice.read ? "" : " is-unread"}">
    <div class="nt-head"><span class="wb-icon wb-icon--sm" aria-hidden="true">${escapeHtml(notice.app.initials)}</span>
      <span class="nt-app">${escapeHtml(notice.app.name)}</span>
      ${notice.status ? `<span class="nt-status">${escapeHtml(notice.status)}</span>` : ""}
      <time class="nt-time">${formatTime(notice.sentAt, true)}</time></div>
    ${notice.title ? `<div class="nt-title">${escapeHtml(notice.title)}</div>` : ""}
    <div class="nt-body">${body}</div>${form}${buttons}${more}
  </li>`;
}

export class Notices {
  // hooks: {user() -> user id, visible() -> bool, toast(text, isError), onCount(unread)}
  constructor(hooks) {
    this.hooks = hooks;
    this.root = document.getElementById("notices-view");
    this.stop = null;
    this.answer = { notices: [], unread: 0 };
  }

  start(user) {
    if (this.stop) this.stop();
    this.answer = { notices: [], unread: 0 };
    this.draw();
    this.stop = follow("/notices", { user }, (answer) => this.accept(answer));
  }

  accept(answer) {
    this.answer = answer;
    this.hooks.onCount(answer.unread);
    this.draw();
    if (answer.unread && this.hooks.visible()) this.read();
  }

  // The person looks at the pane: everything in it is read.
  async read() {
    if (!this.answer.unread) return;
    try {
      this.accept(await postJSON("/notices/read", { user: this.hooks.user() }));
    } catch (error) {
      this.hooks.toast(error.message, true);
    }
  }

  draw() {
    const items = this.answer.notices;
    this.root.innerHTML = `<div class="todos-inner"><header class="todos-head"><h1>工作通知</h1>
        <p class="todos-note">应用通过工作通知接口（asyncsend_v2）发给你的消息。</p></header>
      ${items.length ? `<ol class="nt-list">${items.map(noticeHtml).join("")}</ol>` : `<p class="todo-none">还没有工作通知</p>`}
    </div>`;
  }
}
