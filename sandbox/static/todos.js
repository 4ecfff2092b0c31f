// 待办: the current person's DingTalk todo list, kept live by a long-poll on /sandbox/api/todos.
// Work todos cannot be ticked here (as in DingTalk): their title opens the detail page in a new tab;
// 删除 deletes the todo in DingTalk (the bot hears of it through a todo_task_* event).

import { postJSON } from "./api.js";
import { follow } from "./follow.js";
import { escapeHtml } from "./markdown.js";
import { formatTime } from "./messages.js";

// DingTalk's lists: what I execute (the red dot counts these), what I started, what I follow.
const TABS = [
  { role: "executor", label: "我执行的", empty: "没有要你执行的待办" },
  { role: "creator", label: "我发起的", empty: "你还没有发起待办" },
  { role: "participant", label: "我参与的", empty: "没有你参与的待办" },
];

function hhmm(ms) {
  const d = new Date(ms);
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}

function dueLabel(todo) {
  if (todo.dueTime == null) return "无截止时间";
  const when = formatTime(todo.dueTime, true);
  if (todo.done) return `截止 ${when}`;
  if (todo.dueState === "overdue") return `已逾期 · ${when}`;
  if (todo.dueState === "today") return `今天 ${hhmm(todo.dueTime)} 截止`;
  return `${when} 截止`;
}

function names(people) {
  return people.map((p) => p.name).join("、");
}

function itemHtml(todo, role) {
  const title = todo.openUrl
    ? `<a class="todo-subject" href="${escapeHtml(todo.openUrl)}" target="_blank" rel="noopener noreferrer"
         title="打开详情页处理">${escapeHtml(todo.subject)}</a>`
    : `<span class="todo-subject" title="详情链接不是网页地址，无法在浏览器中打开">${escapeHtml(todo.subject)}</span>`;
  const who = role === "creator"
    ? (todo.executors.length ? `执行人 ${names(todo.executors)}` : "无执行人")
    : `发起人 ${todo.creator.name}`;
  const confirmText = todo.deleteMeans === "deleted"
    ? "删除后所有人的待办里都不再有这一项。确定删除？"
    : `从你的待办中删除（这项待办由${todo.creator.name}发起，其他人的不受影响）。确定删除？`;
  return `<li class="todo todo--${escapeHtml(todo.dueState)}${todo.done ? " is-done" : ""}" data-id="${escapeHtml(todo.id)}">
    <span class="todo-check" aria-hidden="true" title="工作待办需在详情页中处理">${todo.done ? "✓" : ""}</span>
    <div class="todo-main">
      ${title}
      <div class="todo-meta"><span class="todo-due">${escapeHtml(dueLabel(todo))}</span>
        <span>来自「${escapeHtml(todo.app.name)}」</span><span>${escapeHtml(who)}</span></div>
    </div>
    <button type="button" class="todo-delete" data-delete="${escapeHtml(todo.id)}" data-confirm="${escapeHtml(confirmText)}"
      aria-label="删除待办 ${escapeHtml(todo.subject)}">删除</button>
  </li>`;
}

export class Todos {
  // hooks: {user() -> user id, toast(text, isError), onCount(dueCount)}
  constructor(hooks) {
    this.hooks = hooks;
    this.root = document.getElementById("todos-view");
    this.todos = [];
    this.stop = null;
    this.tab = "executor";
    this.root.addEventListener("click", (event) => {
      const tab = event.target.closest("[data-tab]");
      if (tab) {
        this.tab = tab.dataset.tab;
        this.draw();
        return;
      }
      const button = event.target.closest("[data-delete]");
      if (button && window.confirm(button.dataset.confirm)) this.remove(button.dataset.delete);
    });
  }

  // Follow the list of `user` from now on (a new identity stops the previous loop).
  start(user) {
    if (this.stop) this.stop();
    this.todos = [];
    this.tab = "executor";
    this.draw();
    this.stop = follow("/todos", { user }, (answer) => this.accept(answer));
  }

  accept(answer) {
    this.todos = answer.todos;
    this.hooks.onCount(answer.dueCount);
    this.draw();
  }

  draw() {
    const mine = (role) => this.todos.filter((t) => t.roles.includes(role));
    const tabs = TABS.map(({ role, label }) => {
      const open = mine(role).filter((t) => !t.done).length;
      const on = role === this.tab;
      return `<button type="button" role="tab" class="todo-tab${on ? " is-active" : ""}" data-tab="${role}"
        aria-selected="${on}">${label}${open ? `<span class="todo-count">${open}</span>` : ""}</button>`;
    }).join("");
    const items = mine(this.tab);
    const open = items.filter((t) => !t.done);
    const done = items.filter((t) => t.done);
    const list = (todos) => `<ul class="todo-list">${todos.map((t) => itemHtml(t, this.tab)).join("")}</ul>`;
    const empty = TABS.find((t) => t.role === this.tab).empty;
    this.root.innerHTML = `
      <div class="todos-inner">
        <header class="todos-head"><h1>待办</h1>
          <p class="todos-note">工作待办不能在列表里勾选完成：点击标题打开详情页处理。红点表示要你执行、今天到期或已逾期的待办。</p></header>
        <div class="todo-tabs" role="tablist" aria-label="待办分类">${tabs}</div>
        <section class="todo-section" aria-label="进行中"><h2>进行中<span class="todo-count">${open.length}</span></h2>
          ${open.length ? list(open) : `<p class="todo-none">${empty}</p>`}</section>
        ${done.length ? `<section class="todo-section" aria-label="已完成"><h2>已完成<span class="todo-count">${done.length}</span></h2>
          ${list(done)}</section>` : ""}
      </div>`;
  }

  async remove(id) {
    try {
      const answer = await postJSON("/todos/delete", { user: this.hooks.user(), id });
      this.hooks.toast(answer.result === "deleted" ? "已删除待办" : "已从你的待办中删除");
      this.accept(answer);
    } catch (error) {
      this.hooks.toast(error.message, true);
    }
  }
}
