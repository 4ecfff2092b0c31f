// One message view (from /sandbox/api) -> one <li>, drawn the way DingTalk shows it.
// All text goes through escapeHtml / renderMarkdown / renderText.

import { cardHtml } from "./cards.js";
import { escapeHtml, renderMarkdown, renderText, safeUrl } from "./markdown.js";

const PALETTE = ["#1677ff", "#13c2c2", "#52c41a", "#fa8c16", "#eb2f96", "#722ed1", "#2f54eb", "#faad14"];

const ORDER = new Map();

// People of the world get palette colours in world order, so neighbours never share one.
export function registerPeople(ids) {
  ids.forEach((id, index) => ORDER.set(id, index));
}

export function avatarColor(id) {
  if (ORDER.has(id)) return PALETTE[ORDER.get(id) % PALETTE.length];
  // FNV-1a: spreads short ids like "liming" / "liuqiang" over the palette.
  let hash = 0x811c9dc5;
  for (const ch of String(id)) hash = Math.imul(hash ^ ch.codePointAt(0), 0x01000193) >>> 0;
  return PALETTE[hash % PALETTE.length];
}

export function avatarHtml(person, extraClass = "") {
  const bot = person.type === "bot";
  const style = bot ? "" : ` style="background:${avatarColor(person.id)}"`;
  return `<span class="avatar ${bot ? "avatar--bot" : ""} ${extraClass}"${style} aria-hidden="true">${escapeHtml(person.initials || "?")}</span>`;
}

const pad = (n) => String(n).padStart(2, "0");

export function formatTime(ms, withDate = false) {
  const d = new Date(ms);
  const today = new Date();
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  if (!withDate && d.toDateString() === today.toDateString()) return time;
  const date = d.getFullYear() === today.getFullYear() ? `${d.getMonth() + 1}月${d.getDate()}日` : `${d.getFullYear()}年${d.getMonth() + 1}月${d.getDate()}日`;
  return `${date} ${time}`;
}

export function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

const FILE_ICONS = {
  doc: ["W", "word"], docx: ["W", "word"], xls: ["X", "excel"], xlsx: ["X", "excel"], ppt: ["P", "ppt"],
  pptx: ["P", "ppt"], pdf: ["PDF", "pdf"], zip: ["ZIP", "zip"], rar: ["RAR", "zip"],
};

function fileHtml(file, label = "") {
  if (!file) return `<div class="bubble bubble--text">${escapeHtml(label || "[文件]")}</div>`;
  const [glyph, tone] = FILE_ICONS[file.type] || [file.type ? file.type.slice(0, 3).toUpperCase() : "文件", "other"];
  return `<div class="bubble bubble--file">
    <span class="file-icon file-icon--${tone}" aria-hidden="true">${escapeHtml(glyph)}</span>
    <div class="file-info"><div class="file-name" title="${escapeHtml(file.name)}">${escapeHtml(file.name)}</div>
      <div class="file-size">${escapeHtml(label ? label + " · " : "")}${formatSize(file.size)}</div></div>
    <a class="file-dl" href="${escapeHtml(file.url)}&download=1" download="${escapeHtml(file.name)}" aria-label="下载 ${escapeHtml(file.name)}">下载</a>
  </div>`;
}

function buttonHtml(button) {
  const target = safeUrl(button.url);
  const title = escapeHtml(button.title);
  if (target && target.send !== undefined) {
    return `<a href="#" class="card-btn md-send" data-send="${escapeHtml(target.send)}">${title}</a>`;
  }
  if (target) return `<a class="card-btn" href="${escapeHtml(target.href)}" target="_blank" rel="noopener noreferrer">${title}</a>`;
  return `<span class="card-btn card-btn--dead" title="链接需在钉钉客户端中打开：${escapeHtml(button.url)}">${title}</span>`;
}

function imageHtml(url, alt = "图片") {
  if (!url) return `<div class="bubble bubble--text">[${escapeHtml(alt)}]</div>`;
  return `<a class="bubble bubble--image" href="${escapeHtml(url)}" target="_blank" rel="noopener noreferrer"><img src="${escapeHtml(url)}" alt="${escapeHtml(alt)}" loading="lazy"></a>`;
}

function userText(view) {
  // A group message to the bot shows the @ in front, as the sender typed it.
  const tag = `@${view.botName}`;
  const text = view.text || "";
  return view.atBot && view.botName && !text.includes(tag) ? `${tag} ${text}` : text;
}

function bubbleHtml(view) {
  const mentions = [view.botName, ...(view.atNames || [])];
  switch (view.msgtype) {
    case "text":
      return `<div class="bubble bubble--text">${renderText(view.direction === "in" ? userText(view) : view.text, mentions)}</div>`;
    case "markdown":
      return `<div class="bubble bubble--markdown" title="${escapeHtml(view.title || "")}"><div class="md">${renderMarkdown(view.text)}</div></div>`;
    case "actionCard": {
      const buttons = view.buttons || [];
      const orient = view.orientation === "1" && buttons.length > 1 ? "h" : "v";
      return `<div class="bubble bubble--card">
        <div class="card-title">${escapeHtml(view.title || "")}</div>
        <div class="md">${renderMarkdown(view.text)}</div>
        <div class="card-btns card-btns--${orient}">${buttons.map(buttonHtml).join("")}</div></div>`;
    }
    case "interactiveCard":
      return view.card ? cardHtml(view.card) : `<div class="bubble bubble--text bubble--muted">[卡片]</div>`;
    case "link": {
      const target = safeUrl(view.url);
      const pic = view.picUrl ? `<img src="${escapeHtml(view.picUrl)}" alt="" loading="lazy">` : "";
      const body = `<div class="link-title">${escapeHtml(view.title || "")}</div><div class="link-body"><p>${escapeHtml(view.text || "")}</p>${pic}</div>`;
      return target && !target.send
        ? `<a class="bubble bubble--link" href="${escapeHtml(target.href)}" target="_blank" rel="noopener noreferrer">${body}</a>`
        : `<div class="bubble bubble--link">${body}</div>`;
    }
    case "feedCard":
      return `<div class="bubble bubble--feed">${(view.links || []).map((link) => {
        const target = safeUrl(link.url);
        const pic = link.picUrl ? `<img src="${escapeHtml(link.picUrl)}" alt="" loading="lazy">` : "";
        const href = target && !target.send ? ` href="${escapeHtml(target.href)}" target="_blank" rel="noopener noreferrer"` : "";
        return `<a class="feed-item"${href}><span>${escapeHtml(link.title)}</span>${pic}</a>`;
      }).join("")}</div>`;
    case "image":
    case "picture":
      return imageHtml(view.imageUrl);
    case "file":
      return fileHtml(view.file);
    case "audio":
      return fileHtml(view.file, "语音") + (view.text ? `<div class="bubble bubble--text bubble--sub">${escapeHtml(view.text)}</div>` : "");
    case "video":
      return fileHtml(view.file, "视频");
    case "richText":
      return `<div class="bubble bubble--text">${(view.parts || []).map((part) =>
        part.imageUrl ? `<img class="md-img" src="${escapeHtml(part.imageUrl)}" alt="图片" loading="lazy">` : renderText(part.text, mentions),
      ).join("")}</div>`;
    default:
      return `<div class="bubble bubble--text bubble--muted">${escapeHtml(view.text || `[${view.msgtype}]`)}</div>`;
  }
}

export function renderMessage(view, meId) {
  const sender = view.sender;
  const mine = view.direction === "in" && sender.id === meId;
  const bot = sender.type === "bot";
  const li = document.createElement("li");
  li.className = `msg ${mine ? "msg--mine" : "msg--theirs"}${bot ? " msg--bot" : ""}`;
  li.dataset.seq = view.seq;
  li.dataset.msgtype = view.msgtype;
  const notes = [];
  if (view.direction === "out" && (view.atAll || (view.atNames || []).length)) {
    const who = view.atAll ? "所有人" : view.atNames.map((n) => "@" + n).join(" ");
    notes.push(`<span class="note-at">提醒了 ${escapeHtml(who)}</span>`);
  }
  if (view.direction === "in" && view.delivered === false) {
    notes.push(`<span class="note-warn">${view.botAbsent ? "应用机器人不在此外部群，收不到" : "未 @机器人，机器人收不到"}</span>`);
  }
  const badge = bot ? `<span class="bot-tag"${sender.custom ? ' title="自定义机器人（Webhook）"' : ""}>机器人</span>` : "";
  const org = sender.external ? `<span class="org-tag" title="外部联系人">${escapeHtml(sender.org || "外部")}</span>` : "";
  const name = mine ? "" : `<span class="msg-name">${escapeHtml(sender.name)}</span>${badge}${org}`;
  li.innerHTML = `${avatarHtml(sender)}
    <div class="msg-main">
      <div class="msg-meta">${name}<time datetime="${new Date(view.createdAt).toISOString()}">${formatTime(view.createdAt)}</time></div>
      ${bubbleHtml(view)}
      ${notes.length ? `<div class="msg-notes">${notes.join("")}</div>` : ""}
    </div>`;
  return li;
}

export function previewOf(view) {
  const labels = {
    markdown: view.title, actionCard: view.title, image: "[图片]", picture: "[图片]",
    file: `[文件] ${view.file ? view.file.name : ""}`, link: `[链接] ${view.title || ""}`, feedCard: "[链接]",
    audio: "[语音]", video: "[视频]", richText: (view.parts || []).map((p) => p.text || "[图片]").join(""),
  };
  const text = view.msgtype in labels ? labels[view.msgtype] : view.text;
  return String(text || "").replace(/\s+/g, " ").trim();
}
