// A small, safe renderer for the markdown DingTalk shows in bot messages.
//
// Supported: headings, bold, italics, strike-through, inline code, fenced code,
// links, images (URL or media id "@…"), ordered/unordered (nested) lists, quotes,
// rules, simple tables, <font color> (DingTalk allows it) and line breaks.
// Safety: every piece of source text goes through escapeHtml before it reaches the
// output, the only tags emitted are the ones written here, and URLs must pass
// safeUrl. Nothing from the message can add an attribute or a tag of its own.

import { mediaUrl } from "./api.js";

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function escapeHtml(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

// Returns {href, send} or null. `send` is the text a dtmd:// link makes the user send.
export function safeUrl(raw) {
  const url = String(raw ?? "").trim();
  if (url.startsWith("@")) return { href: mediaUrl(url) };
  const send = /^dtmd:\/\/dingtalkclient\/sendMessage\?content=([^&]*)/i.exec(url);
  if (send) {
    try {
      return { href: "#", send: decodeURIComponent(send[1].replace(/\+/g, " ")) };
    } catch {
      return null;
    }
  }
  // dingtalk://dingtalkclient/page/link?url=<encoded>: open the wrapped page.
  const wrapped = /^dingtalk:\/\/dingtalkclient\/page\/link\?(?:.*&)?url=([^&]*)/i.exec(url);
  if (wrapped) {
    try {
      return safeUrl(decodeURIComponent(wrapped[1]));
    } catch {
      return null;
    }
  }
  if (/^(https?:\/\/|mailto:|\/sandbox\/api\/media\?)/i.test(url)) return { href: url };
  if (/^www\./i.test(url)) return { href: `http://${url}` };
  return null;
}

function linkHtml(target, innerHtml) {
  if (!target) return innerHtml;
  if (target.send !== undefined) {
    return `<a href="#" class="md-send" data-send="${escapeHtml(target.send)}" title="点击发送：${escapeHtml(target.send)}">${innerHtml}</a>`;
  }
  return `<a href="${escapeHtml(target.href)}" target="_blank" rel="noopener noreferrer">${innerHtml}</a>`;
}

// Inline patterns, earliest match wins; on a tie the first listed wins (code before
// links, ** before *).
// A URL may hold one level of balanced parentheses; a link's text may hold an image.
const URL_PART = String.raw`\(\s*<?((?:[^()\s<>]|\([^()\s<>]*\))+)>?(?:\s+"[^"\n]*")?\s*\)`;
const INLINE = [
  ["code", /`([^`\n]+)`/],
  ["image", new RegExp(String.raw`!\[([^\]\n]*)\]` + URL_PART)],
  ["link", new RegExp(String.raw`\[((?:!\[[^\]\n]*\]\([^)\s]*\)|[^\]\n])+)\]` + URL_PART)],
  ["font", /<font\s+color\s*=\s*["']?(#[0-9a-fA-F]{3,8}|[a-zA-Z]{3,20})["']?\s*>([\s\S]*?)<\/font>/i],
  ["strong", /\*\*(?=\S)([\s\S]*?\S)\*\*|__(?=\S)([\s\S]*?\S)__/],
  ["strike", /~~(?=\S)([\s\S]*?\S)~~/],
  // "_" emphasis as CommonMark has it: it opens after a space or punctuation and closes before one (so a_b_c and
  // text the bot disarmed with zero-width spaces stay literal).
  ["em", /\*(?=[^\s*])([^*\n]*?[^\s*])\*|(?<=^|[\s\p{P}\p{S}])_(?=[^\s_])([^_\n]*?[^\s_])_(?=$|[\s\p{P}\p{S}])/u],
  // Like the DingTalk clients, bare addresses become links: with a scheme, or starting with www. and ASCII labels.
  ["autolink", /https?:\/\/[^\s<>"'）)，。；！？、]+|www\.[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+[^\s<>"'）)，。；！？、]*/],
];

export function renderInline(text, options = {}) {
  let rest = String(text ?? "");
  let out = "";
  let guard = 0;
  while (rest && guard++ < 10000) {
    let best = null;
    for (const [kind, pattern] of INLINE) {
      if (options.noLinks && (kind === "link" || kind === "autolink")) continue;
      const match = pattern.exec(rest);
      if (match && (!best || match.index < best.match.index)) best = { kind, match };
    }
    if (!best) break;
    out += escapeHtml(rest.slice(0, best.match.index));
    out += inlineToken(best.kind, best.match, options);
    rest = rest.slice(best.match.index + best.match[0].length);
  }
  return out + escapeHtml(rest);
}

function inlineToken(kind, m, options) {
  const inner = (s) => renderInline(s, options);
  switch (kind) {
    case "code":
      return `<code>${escapeHtml(m[1])}</code>`;
    case "image": {
      const target = safeUrl(m[2]);
      if (!target || target.send !== undefined) return escapeHtml(m[1] || m[2]);
      return `<img class="md-img" src="${escapeHtml(target.href)}" alt="${escapeHtml(m[1])}" loading="lazy">`;
    }
    case "link":
      return linkHtml(safeUrl(m[2]), renderInline(m[1], { ...options, noLinks: true }));
    case "font":
      return `<span style="color:${escapeHtml(m[1])}">${inner(m[2])}</span>`;
    case "strong":
      return `<strong>${inner(m[1] ?? m[2])}</strong>`;
    case "strike":
      return `<del>${inner(m[1])}</del>`;
    case "em":
      return `<em>${inner(m[1] ?? m[2])}</em>`;
    case "autolink":
      return linkHtml(safeUrl(m[0]), escapeHtml(m[0]));
    default:
      return escapeHtml(m[0]);
  }
}

const HEADING = /^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const RULE = /^ {0,3}([-*_])(?:\s*\1){2,}\s*$/;
const FENCE = /^ {0,3}(```|~~~)\s*([\w-]*)\s*$/;
const QUOTE = /^ {0,3}>\s?(.*)$/;
const ITEM = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/;
// A delimiter row: hyphens, optional colons, and at least one pipe (so "---" stays a rule).
const TABLE_RULE = /^(?=.*\|)(?=.*-)\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;

function cells(line) {
  return line.trim().replace(/^\|/, "").replace(/\|$/, "").split("|").map((c) => c.trim());
}

function renderList(items) {
  // items: [{indent, ordered, start, text}] -> nested lists by indentation.
  let html = "";
  const stack = [];
  for (const item of items) {
    while (stack.length && item.indent < stack[stack.length - 1].indent) {
      html += `</li></${stack.pop().tag}>`;
    }
    const top = stack[stack.length - 1];
    if (!top || item.indent > top.indent) {
      const tag = item.ordered ? "ol" : "ul";
      const start = item.ordered && item.start !== 1 ? ` start="${item.start}"` : "";
      html += `<${tag}${start}>`;
      stack.push({ indent: item.indent, tag });
    } else {
      html += "</li>";
    }
    html += `<li>${renderInline(item.text)}`;
  }
  while (stack.length) html += `</li></${stack.pop().tag}>`;
  return html;
}

export function renderMarkdown(source, depth = 0) {
  const lines = String(source ?? "").replace(/\r\n?/g, "\n").split("\n");
  const out = [];
  let paragraph = [];
  const flush = () => {
    if (paragraph.length) out.push(`<p>${paragraph.map((l) => renderInline(l)).join("<br>")}</p>`);
    paragraph = [];
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    let m;
    if (!line.trim()) {
      flush();
    } else if ((m = FENCE.exec(line))) {
      flush();
      const body = [];
      while (++i < lines.length && !lines[i].trim().startsWith(m[1])) body.push(lines[i]);
      out.push(`<pre><code>${escapeHtml(body.join("\n"))}</code></pre>`);
    } else if ((m = HEADING.exec(line))) {
      flush();
      out.push(`<h${m[1].length}>${renderInline(m[2])}</h${m[1].length}>`);
    } else if (RULE.test(line)) {
      flush();
      out.push("<hr>");
    } else if ((m = QUOTE.exec(line)) && depth < 4) {
      flush();
      const body = [m[1]];
      while (i + 1 < lines.length && (m = QUOTE.exec(lines[i + 1]))) {
        body.push(m[1]);
        i++;
      }
      out.push(`<blockquote>${renderMarkdown(body.join("\n"), depth + 1)}</blockquote>`);
    } else if (ITEM.test(line)) {
      flush();
      const items = [];
      while (i < lines.length && (m = ITEM.exec(lines[i]))) {
        const ordered = /\d/.test(m[2]);
        items.push({ indent: m[1].replace(/\t/g, "    ").length, ordered, start: ordered ? parseInt(m[2], 10) : 1, text: m[3] });
        i++;
      }
      i--;
      out.push(renderList(items));
    } else if (line.includes("|") && i + 1 < lines.length && TABLE_RULE.test(lines[i + 1])) {
      flush();
      const head = cells(line);
      let html = `<table><thead><tr>${head.map((c) => `<th>${renderInline(c)}</th>`).join("")}</tr></thead><tbody>`;
      i += 1;
      while (i + 1 < lines.length && lines[i + 1].includes("|") && lines[i + 1].trim()) {
        html += `<tr>${cells(lines[++i]).map((c) => `<td>${renderInline(c)}</td>`).join("")}</tr>`;
      }
      out.push(html + "</tbody></table>");
    } else {
      paragraph.push(line);
    }
  }
  flush();
  return out.join("");
}

// Plain text bubbles: escape, keep line breaks, link URLs, highlight @mentions.
export function renderText(text, mentionNames = []) {
  const names = [...new Set(mentionNames.filter(Boolean))].sort((a, b) => b.length - a.length);
  const plain = (s) => {
    let html = escapeHtml(s);
    for (const name of names) {
      const tag = escapeHtml("@" + name);
      html = html.split(tag).join(`<span class="mention">${tag}</span>`);
    }
    return html.replace(/\n/g, "<br>");
  };
  let out = "";
  let rest = String(text ?? "");
  const url = /https?:\/\/[^\s<>"'）)，。；！？、]+/;
  let m;
  while ((m = url.exec(rest))) {
    out += plain(rest.slice(0, m.index)) + linkHtml(safeUrl(m[0]), escapeHtml(m[0]));
    rest = rest.slice(m.index + m[0].length);
  }
  return out + plain(rest);
}
