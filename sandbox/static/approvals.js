// The approvals inbox (审批): what waits for the current user, what they handled and
// what they started; a detail card with the form, the flow and 同意/拒绝 with a remark.

import { getJSON, postJSON } from "./api.js";
import { escapeHtml } from "./markdown.js";
import { avatarHtml, formatTime } from "./messages.js";

const STEP_KIND = { AND: "会签（需所有人同意）", OR: "或签（一人同意即可）", NONE: "" };

function statusTag(item) {
  return `<span class="status status--${escapeHtml(item.tone)}">${escapeHtml(item.statusLabel)}</span>`;
}

function timelineHtml(item) {
  const rows = [];
  for (const record of item.records) {
    let action = record.typeLabel;
    let tone = "done";
    if (record.type === "EXECUTE_TASK_NORMAL") {
      action = record.resultLabel || "已处理";
      tone = record.result === "REFUSE" ? "refuse" : "agree";
    } else if (record.type === "TERMINATE_PROCESS_INSTANCE") {
      tone = "terminated";
    }
    rows.push({ user: record.user, action, tone, date: record.date, remark: record.remark });
  }
  if (item.status === "RUNNING") {
    const step = item.steps[item.currentStep];
    for (const task of item.tasks.filter((t) => t.status === "RUNNING")) {
      rows.push({ user: task.user, action: "审批中", tone: "running", note: step ? STEP_KIND[step.actionType] : "" });
    }
    item.steps.slice(item.currentStep + 1).forEach((later) => {
      for (const user of later.users) rows.push({ user, action: "待审批", tone: "waiting", note: STEP_KIND[later.actionType] });
    });
  }
  return rows.map((row) => `
    <li class="tl-item tl--${row.tone}">
      <span class="tl-dot" aria-hidden="true"></span>
      ${avatarHtml({ ...row.user, type: "user" }, "avatar--sm")}
      <div class="tl-body">
        <div class="tl-line"><span class="tl-name">${escapeHtml(row.user.name)}</span>
          <span class="tl-action">${escapeHtml(row.action)}</span>
          ${row.note ? `<span class="tl-note">${escapeHtml(row.note)}</span>` : ""}
          ${row.date ? `<time class="tl-time">${formatTime(row.date, true)}</time>` : ""}</div>
        ${row.remark ? `<div class="tl-remark">${escapeHtml(row.remark)}</div>` : ""}
      </div>
    </li>`).join("");
}

export class Approvals {
  // hooks: {user() -> user id, toast(text, isError), onCount(pendingCount)}
  constructor(hooks) {
    this.hooks = hooks;
    this.data = { pending: [], done: [], started: [] };
    this.tab = "pending";
    this.selected = null;
    this.fingerprint = null;
    this.list = document.getElementById("ap-list");
    this.detail = document.getElementById("ap-detail");
    for (const button of document.querySelectorAll(".ap-tab")) {
      button.addEventListener("click", () => this.showTab(button.dataset.tab));
    }
    this.list.addEventListener("click", (event) => {
      const item = event.target.closest("[data-id]");
      if (item) this.select(item.dataset.id);
    });
    this.detail.addEventListener("click", (event) => {
      const button = event.target.closest("[data-act]");
      if (button) this.act(button.dataset.act);
    });
  }

  reset() {
    this.selected = null;
    this.fingerprint = null;
    this.data = { pending: [], done: [], started: [] };
  }

  async load() {
    const user = this.hooks.user();
    const data = await getJSON("/approvals", { user });
    if (user !== this.hooks.user()) return;   // the identity changed while loading
    this.data = data;
    this.fingerprint = data.fingerprint;
    this.hooks.onCount(data.pending.length);
    this.draw();
  }

  find(id) {
    for (const tab of ["pending", "done", "started"]) {
      const item = this.data[tab].find((i) => i.id === id);
      if (item) return item;
    }
    return null;
  }

  showTab(tab) {
    this.tab = tab;
    for (const button of document.querySelectorAll(".ap-tab")) {
      const on = button.dataset.tab === tab;
      button.classList.toggle("is-active", on);
      button.setAttribute("aria-selected", String(on));
    }
    this.draw();
  }

  select(id) {
    this.selected = id;
    this.draw();
    const remark = document.getElementById("ap-remark");
    if (remark) remark.focus();
  }

  draw() {
    const items = this.data[this.tab] || [];
    const counts = { pending: this.data.pending.length };
    for (const button of document.querySelectorAll(".ap-tab")) {
      const n = counts[button.dataset.tab];
      button.dataset.count = n ? String(n) : "";
    }
    this.list.innerHTML = items.length ? items.map((item) => `
      <li><button type="button" class="ap-item${item.id === this.selected ? " is-active" : ""}" data-id="${escapeHtml(item.id)}">
        ${avatarHtml({ ...item.originator, type: "user" })}
        <span class="ap-item-main"><span class="ap-item-title">${escapeHtml(item.title)}</span>
          <span class="ap-item-sub">${escapeHtml(item.formName)} · ${formatTime(item.createdAt, true)}</span></span>
        ${statusTag(item)}
      </button></li>`).join("")
      : `<li class="ap-none">${{ pending: "没有待处理的审批", done: "还没有处理过审批", started: "还没有发起过审批" }[this.tab]}</li>`;
    const item = this.selected && this.find(this.selected);
    this.detail.innerHTML = item ? this.detailHtml(item) : `<div class="ap-empty">选择左侧的审批查看详情</div>`;
  }

  detailHtml(item) {
    const form = item.form.map((f) => `<dt>${escapeHtml(f.name)}</dt><dd>${escapeHtml(f.value) || "—"}</dd>`).join("");
    const action = item.canAct ? `
      <section class="ap-action" aria-label="审批操作">
        <label for="ap-remark">审批意见</label>
        <textarea id="ap-remark" rows="3" maxlength="1000" placeholder="请输入审批意见（选填）"></textarea>
        <div class="ap-buttons">
          <button type="button" class="btn btn--danger" data-act="refuse">拒绝</button>
          <button type="button" class="btn btn--primary" data-act="agree">同意</button>
        </div>
      </section>` : "";
    return `<article class="ap-card" data-instance="${escapeHtml(item.id)}">
      <header class="ap-head">
        ${avatarHtml({ ...item.originator, type: "user" }, "avatar--lg")}
        <div class="ap-head-main"><h2 class="ap-title">${escapeHtml(item.title)}</h2>
          <div class="ap-meta">审批编号 ${escapeHtml(item.businessId)} · ${escapeHtml(item.deptName || "")} · 提交于 ${formatTime(item.createdAt, true)}</div></div>
        ${statusTag(item)}
      </header>
      <section class="ap-section"><h3>表单内容</h3><dl class="ap-form">${form}</dl></section>
      <section class="ap-section"><h3>审批流程</h3><ol class="timeline">${timelineHtml(item)}</ol>
        ${item.ccNames.length ? `<div class="ap-cc">抄送：${escapeHtml(item.ccNames.join("、"))}</div>` : ""}</section>
      ${action}
    </article>`;
  }

  async act(result) {
    const remarkBox = document.getElementById("ap-remark");
    const buttons = this.detail.querySelectorAll("[data-act]");
    buttons.forEach((b) => (b.disabled = true));
    try {
      const answer = await postJSON("/approvals/act", {
        user: this.hooks.user(), instanceId: this.selected, result, remark: remarkBox ? remarkBox.value : "",
      });
      this.hooks.toast(result === "agree" ? "已同意" : "已拒绝");
      await this.load();
      // Keep showing the instance just handled (it moved from 待我处理 to 我已处理).
      if (!this.data[this.tab].some((i) => i.id === answer.instance.id)) this.showTab("done");
    } catch (error) {
      this.hooks.toast(error.message, true);
      buttons.forEach((b) => (b.disabled = false));
    }
  }
}
