// Interactive cards (互动卡片): a card message drawn as DingTalk draws it, the pinned card (吊顶)
// above the conversation, and presses as the chosen person (POST /sandbox/api/cards/act).
// The server resolves the definition (variables, visibility, private data); this file only
// draws what a card view says. All text goes through escapeHtml / renderMarkdown.

import { getJSON, postJSON } from "./api.js";
import { escapeHtml, renderMarkdown, safeUrl } from "./markdown.js";

const latest = new Map(); // outTrackId -> newest view seen for the current identity

function remember(card) {
  const known = latest.get(card.outTrackId);
  if (!known || card.version >= known.version) latest.set(card.outTrackId, card);
  return latest.get(card.outTrackId);
}

function inputHtml(input) {
  const attrs = `data-input="${escapeHtml(input.id)}" maxlength="${input.maxLength}" placeholder="${escapeHtml(input.placeholder)}"`;
  const box = input.multiline ? `<textarea rows="2" ${attrs}></textarea>` : `<input type="text" ${attrs}>`;
  return `<label class="icard-input"><span>${escapeHtml(input.label)}${input.required ? '<em aria-label="必填">*</em>' : ""}</span>${box}</label>`;
}

function linkHtml(link) {
  const target = safeUrl(link.url);
  if (target && target.send === undefined) {
    return `<a class="icard-link" href="${escapeHtml(target.href)}" target="_blank" rel="noopener noreferrer">${escapeHtml(link.text)}</a>`;
  }
  return `<span class="icard-link icard-link--dead" title="链接需在钉钉客户端中打开">${escapeHtml(link.text)}</span>`;
}

// A card view -> HTML. `pinned`: drawn inside the top box, whose bar shows the title and status
// and whose × stands for the close button.
export function cardHtml(view, { pinned = false } = {}) {
  const card = remember(view);
  const status = card.status
    ? `<span class="icard-status icard-status--${escapeHtml(card.status.color)}">${escapeHtml(card.status.text)}</span>` : "";
  const fields = card.fields.length
    ? `<dl class="icard-fields">${card.fields.map((f) => `<div><dt>${escapeHtml(f.label)}</dt><dd>${escapeHtml(f.value)}</dd></div>`).join("")}</dl>` : "";
  const lists = card.lists.map((list) => `<div class="icard-list"><div class="icard-list-title">${escapeHtml(list.title)}</div>${
    list.items.length ? `<ul>${list.items.map((item) => `<li>${escapeHtml(item)}</li>`).join("")}</ul>`
      : `<div class="icard-empty">${escapeHtml(list.empty)}</div>`}</div>`).join("");
  const buttons = card.buttons.filter((b) => !(pinned && b.close)).map((b) =>
    `<button type="button" class="icard-btn icard-btn--${escapeHtml(b.style)}" data-card-action="${escapeHtml(b.id)}"${b.disabled ? " disabled" : ""}>${escapeHtml(b.text)}</button>`).join("");
  const notes = [];
  if (card.buttons.length && card.callbackType !== "STREAM") notes.push("此卡片未开启 STREAM 回调，按钮不会通知机器人");
  if (card.streamState === "inputting") notes.push("输入中…");
  if (card.streamState === "failed") notes.push("生成失败");
  return `<div class="bubble bubble--icard${pinned ? " icard--pinned" : ""}" data-out-track-id="${escapeHtml(card.outTrackId)}">
    ${pinned ? "" : `<div class="icard-head"><span class="icard-title">${escapeHtml(card.title)}</span>${status}</div>`}
    ${card.body ? `<div class="md icard-body">${renderMarkdown(card.body)}</div>` : ""}
    ${fields}${lists}
    ${card.inputs.length ? `<div class="icard-inputs">${card.inputs.map(inputHtml).join("")}</div>` : ""}
    ${card.links.length ? `<div class="icard-links">${card.links.map(linkHtml).join("")}</div>` : ""}
    ${buttons ? `<div class="icard-btns">${buttons}</div>` : ""}
    ${notes.map((n) => `<div class="icard-note">${escapeHtml(n)}</div>`).join("")}
  </div>`;
}

// What the user typed into a card's inputs survives a redraw (another person's update, say).
function keepTyped(from, to) {
  const typed = new Map([...from.querySelectorAll("[data-input]")].map((box) => [box.dataset.input, box.value]));
  for (const box of to.querySelectorAll("[data-input]")) {
    if (typed.has(box.dataset.input)) box.value = typed.get(box.dataset.input);
  }
}

function summaryOf(card) {
  return card.fields.slice(0, 4).map((f) => `${f.label} ${f.value}`).join(" · ");
}

export class Cards {
  // hooks: {user() -> id, conversation() -> conversation or null, toast(text, isError)}
  constructor(hooks) {
    this.hooks = hooks;
    this.fingerprint = null;
    this.top = null;
    this.folded = new Set(); // outTrackIds of pinned cards the user folded
    this.topBox = document.getElementById("top-card");
    document.getElementById("messages").addEventListener("click", (event) => this.onClick(event, false));
    this.topBox.addEventListener("click", (event) => this.onClick(event, true));
  }

  reset() {
    latest.clear();
    this.folded.clear();
    this.fingerprint = null;
    this.top = null;
    this.drawTop();
  }

  // The open conversation's cards (latest data) and its pinned card.
  async load() {
    const user = this.hooks.user();
    const conv = this.hooks.conversation();
    if (!conv) return;
    const answer = await getJSON("/cards", { user, conversation: conv.id });
    if (user !== this.hooks.user() || conv.id !== (this.hooks.conversation() || {}).id) return;
    for (const card of answer.cards) this.redraw(card);
    this.top = answer.topCard;
    this.drawTop();
  }

  show(conv) {
    this.top = conv.topCard || null;
    this.drawTop();
    this.load().catch((error) => this.hooks.toast(error.message, true));
  }

  redraw(card, { clearInputs = false } = {}) {
    remember(card);
    for (const old of document.querySelectorAll(`#messages [data-out-track-id="${CSS.escape(card.outTrackId)}"]`)) {
      const fresh = document.createElement("template");
      fresh.innerHTML = cardHtml(card).trim();
      if (!clearInputs) keepTyped(old, fresh.content);
      old.replaceWith(fresh.content);
    }
  }

  drawTop() {
    const card = this.top;
    this.topBox.hidden = !card;
    if (!card) {
      this.topBox.innerHTML = "";
      return;
    }
    const view = remember(card);
    const folded = this.folded.has(view.outTrackId);
    const close = view.buttons.find((b) => b.close);
    const status = view.status
      ? `<span class="icard-status icard-status--${escapeHtml(view.status.color)}">${escapeHtml(view.status.text)}</span>` : "";
    const typed = document.createElement("div");
    typed.append(...this.topBox.childNodes);
    this.topBox.innerHTML = `
      <div class="topcard-bar" data-out-track-id="${escapeHtml(view.outTrackId)}">
        <span class="topcard-tag">吊顶</span>
        <span class="topcard-title">${escapeHtml(view.title)}</span>${status}
        <span class="topcard-summary">${folded ? escapeHtml(summaryOf(view)) : ""}</span>
        <button type="button" class="topcard-fold" data-top-fold aria-expanded="${!folded}">${folded ? "展开" : "收起"}</button>
        ${close ? `<button type="button" class="topcard-close" data-card-action="${escapeHtml(close.id)}" aria-label="关闭吊顶卡片" title="${escapeHtml(close.text)}">×</button>` : ""}
      </div>
      ${folded ? "" : cardHtml(view, { pinned: true })}`;
    keepTyped(typed, this.topBox);
  }

  async onClick(event, pinned) {
    if (event.target.closest("[data-top-fold]")) {
      const id = this.top.outTrackId;
      if (this.folded.has(id)) this.folded.delete(id);
      else this.folded.add(id);
      this.drawTop();
      return;
    }
    const button = event.target.closest("[data-card-action]");
    if (!button || button.disabled) return;
    const cardEl = button.closest("[data-out-track-id]");
    const outTrackId = cardEl.dataset.outTrackId;
    const scope = pinned ? this.topBox : cardEl;
    const params = Object.fromEntries([...scope.querySelectorAll("[data-input]")].map((i) => [i.dataset.input, i.value]));
    const conv = this.hooks.conversation();
    button.disabled = true;
    scope.classList.add("is-busy");
    try {
      const answer = await postJSON("/cards/act", {
        user: this.hooks.user(), outTrackId, action: button.dataset.cardAction, params, conversation: conv.id, pinned,
      });
      if (answer.toast) this.hooks.toast(answer.toast.text, answer.toast.kind === "failure");
      this.redraw(answer.card, { clearInputs: answer.success });
      if (pinned && answer.success) this.topBox.querySelectorAll("[data-input]").forEach((box) => (box.value = ""));
      await this.load();
    } catch (error) {
      this.hooks.toast(error.message, true);
    } finally {
      button.disabled = false;
      scope.classList.remove("is-busy");
    }
  }
}
