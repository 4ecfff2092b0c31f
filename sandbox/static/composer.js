// The message box: Enter sends (not while an IME is composing Chinese), Shift+Enter
// breaks the line, "@" opens a picker of group members, and the file buttons upload.
// A pick is remembered by id, so two members with the same name are told apart.

import { escapeHtml } from "./markdown.js";
import { avatarHtml } from "./messages.js";

export class Composer {
  // hooks: {onSend(text, pickedIds), onFile(file, kind),
  //         candidates() -> [{id, name, title, description?, org?, external?, initials, type}]}
  constructor(hooks) {
    this.hooks = hooks;
    this.form = document.getElementById("composer");
    this.input = document.getElementById("message-input");
    this.picker = document.getElementById("mention-picker");
    this.items = [];
    this.active = 0;
    this.anchor = -1;   // index of the "@" the picker completes
    this.picked = [];   // [{id, name}] chosen from the picker since the last send
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.send();
    });
    this.input.addEventListener("keydown", (event) => this.onKey(event));
    this.input.addEventListener("input", () => this.onInput());
    this.input.addEventListener("blur", () => setTimeout(() => this.close(), 150));
    document.getElementById("mention-btn").addEventListener("click", () => {
      this.insert("@");
      this.onInput();
    });
    for (const [id, kind] of [["file-input", "file"], ["picture-input", "picture"]]) {
      const element = document.getElementById(id);
      element.addEventListener("change", () => {
        const file = element.files && element.files[0];
        element.value = "";
        if (file) this.hooks.onFile(file, kind);
      });
    }
  }

  async send() {
    const text = this.input.value;
    if (!text.trim()) return;
    this.close();
    // Only picks whose "@名字" is still in the text count.
    const picked = this.picked.filter((p) => text.includes(`@${p.name}`)).map((p) => p.id);
    const sent = await this.hooks.onSend(text, picked);
    if (sent) {
      this.input.value = "";
      this.picked = [];
    }
    this.input.focus();
  }

  insert(text) {
    const { selectionStart: start, selectionEnd: end, value } = this.input;
    this.input.value = value.slice(0, start) + text + value.slice(end);
    this.input.selectionStart = this.input.selectionEnd = start + text.length;
    this.input.focus();
  }

  onKey(event) {
    if (!this.picker.hidden) {
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        const step = event.key === "ArrowDown" ? 1 : -1;
        this.active = (this.active + step + this.items.length) % this.items.length;
        this.draw();
        return;
      }
      if ((event.key === "Enter" || event.key === "Tab") && !event.isComposing) {
        event.preventDefault();
        this.pick(this.items[this.active]);
        return;
      }
      if (event.key === "Escape") {
        event.preventDefault();
        this.close();
        return;
      }
    }
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      this.send();
    }
  }

  onInput() {
    const caret = this.input.selectionStart;
    const before = this.input.value.slice(0, caret);
    const match = /@([^\s@]{0,20})$/.exec(before);
    const candidates = this.hooks.candidates();
    if (!match || !candidates.length) return this.close();
    const query = match[1].toLowerCase();
    this.anchor = caret - match[0].length;
    this.items = candidates.filter((c) => c.name.toLowerCase().includes(query) || c.id.toLowerCase().includes(query)
      || (c.org || "").toLowerCase().includes(query));
    if (!this.items.length) return this.close();
    this.active = 0;
    this.picker.hidden = false;
    this.draw();
  }

  draw() {
    this.picker.innerHTML = this.items.map((c, i) => `
      <li role="option" id="mention-${i}" class="mention-item${i === this.active ? " is-active" : ""}" data-index="${i}"
          aria-selected="${i === this.active}">
        ${avatarHtml(c, "avatar--xs")}<span class="mention-name">${escapeHtml(c.name)}</span>
        ${c.external ? `<span class="org-tag" title="外部联系人">${escapeHtml(c.org || "外部")}</span>` : ""}
        <span class="mention-title">${escapeHtml((c.external ? c.title : c.description) || c.title || "")}</span></li>`).join("");
    this.input.setAttribute("aria-activedescendant", `mention-${this.active}`);
    for (const li of this.picker.querySelectorAll("li")) {
      // mousedown, not click: it fires before the textarea's blur closes the picker.
      li.addEventListener("mousedown", (event) => {
        event.preventDefault();
        this.pick(this.items[Number(li.dataset.index)]);
      });
    }
  }

  pick(candidate) {
    if (!candidate) return this.close();
    const caret = this.input.selectionStart;
    const value = this.input.value;
    const text = `@${candidate.name} `;
    if (candidate.type === "user") this.picked.push({ id: candidate.id, name: candidate.name });
    this.input.value = value.slice(0, this.anchor) + text + value.slice(caret);
    this.input.selectionStart = this.input.selectionEnd = this.anchor + text.length;
    this.close();
    this.input.focus();
  }

  close() {
    this.picker.hidden = true;
    this.items = [];
    this.input.removeAttribute("aria-activedescendant");
  }
}
