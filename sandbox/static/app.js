// The page's state and wiring: who I am, my conversations, the live feed (one
// long-poll on /sandbox/api/updates), the message list and the approvals inbox.

import { getJSON, postForm, postJSON } from "./api.js";
import { Approvals } from "./approvals.js";
import { Cards } from "./cards.js";
import { Composer } from "./composer.js";
import { escapeHtml } from "./markdown.js";
import { avatarHtml, formatTime, previewOf, registerPeople, renderMessage } from "./messages.js";
import { Notices } from "./notices.js";
import { Todos } from "./todos.js";
import { Workbench } from "./workbench.js";

const $ = (id) => document.getElementById(id);
const ROLE_ORDER = ["team", "leader", "client"];
const VIEWS = ["chat", "approvals", "todos", "notices", "workbench"];

const state = {
  world: null,
  users: new Map(),
  me: null,
  conversations: [],
  active: null,
  messages: new Map(),   // conversation id -> views sorted by seq
  seen: new Set(),       // seqs already stored
  unread: new Map(),
  last: 0,
  generation: 0,         // bumps on every identity change; stale loops and answers stop
  abort: null,
  view: "chat",
  stick: true,           // keep the message list scrolled to the newest message
};

let toastTimer = null;
function toast(text, isError = false) {
  const box = $("toast");
  box.textContent = text;
  box.classList.toggle("toast--error", isError);
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (box.hidden = true), isError ? 6000 : 2500);
}

const approvals = new Approvals({
  user: () => state.me,
  toast,
  onCount: (n) => setBadge("approval-badge", n),
});

const todos = new Todos({ user: () => state.me, toast, onCount: (n) => setBadge("todo-badge", n) });
const notices = new Notices({
  user: () => state.me, visible: () => state.view === "notices", toast, onCount: (n) => setBadge("notice-badge", n),
});
const workbench = new Workbench({ user: () => state.me, toast });
const cards = new Cards({ user: () => state.me, conversation: activeConversation, toast });

const composer = new Composer({
  onSend: sendText,
  onFile: sendFile,
  candidates: mentionCandidates,
});

function setBadge(id, n) {
  const badge = $(id);
  badge.hidden = !n;
  badge.textContent = n > 99 ? "99+" : String(n || "");
}

function activeConversation() {
  return state.conversations.find((c) => c.id === state.active) || null;
}

function mentionCandidates() {
  const conv = activeConversation();
  if (!conv || conv.type !== "group") return [];
  const people = conv.memberIds.filter((id) => id !== state.me).map((id) => ({ ...state.users.get(id), type: "user" }));
  // The app's robot is offered only where it may be (an external group may refuse it).
  return conv.botAvailable === false ? people : [{ ...conv.bot, type: "bot", title: "机器人" }, ...people];
}

function syncUrl() {
  const params = new URLSearchParams({ user: state.me || "" });
  if (state.active) params.set("c", state.active);
  if (state.view !== "chat") params.set("view", state.view);
  history.replaceState(null, "", `${location.pathname}?${params}`);
}

// ---- identity -----------------------------------------------------------------------

function fillUserSelect() {
  const select = $("user-select");
  select.innerHTML = "";
  const labels = Object.fromEntries(state.world.roles.map((r) => [r.id, r.label]));
  for (const role of ROLE_ORDER) {
    const group = document.createElement("optgroup");
    group.label = labels[role];
    for (const user of state.world.users.filter((u) => u.role === role)) {
      const option = document.createElement("option");
      option.value = user.id;
      // Outsiders with their organization, as DingTalk labels external members.
      const about = user.external ? [user.org, user.title].filter(Boolean).join("·") : user.title || user.roleLabel;
      option.textContent = `${user.name}（${about}）${user.active === false ? "（已离职）" : ""}`;
      group.appendChild(option);
    }
    if (group.children.length) select.appendChild(group);
  }
  select.addEventListener("change", () => switchUser(select.value));
}

async function switchUser(userId, preferred = null) {
  const generation = ++state.generation;
  if (state.abort) state.abort.abort();
  Object.assign(state, { me: userId, active: null, conversations: [], last: 0 });
  state.messages = new Map();
  state.seen = new Set();
  state.unread = new Map();
  approvals.reset();
  todos.start(userId);
  notices.start(userId);
  if (state.view === "workbench") workbench.load();
  cards.reset();
  const me = state.users.get(userId);
  $("user-select").value = userId;
  $("me-avatar").outerHTML = avatarHtml({ ...me, type: "user" }, "avatar--sm").replace("<span ", '<span id="me-avatar" ');
  $("me-title").textContent = me.org || "";
  try {
    const [{ conversations }, first] = await Promise.all([
      getJSON("/conversations", { user: userId }),
      getJSON("/updates", { user: userId, after: 0 }),
      approvals.load(),
    ]);
    if (generation !== state.generation) return;
    state.conversations = conversations;
    state.last = first.last;
    cards.fingerprint = first.cards;
    for (const view of first.messages) store(view, false);
    const target = conversations.find((c) => c.id === preferred) || conversations[0];
    drawConversations();
    if (target) openConversation(target.id);
    live(generation);
  } catch (error) {
    toast(error.message, true);
  }
}

// ---- the live feed --------------------------------------------------------------------

async function live(generation) {
  let failures = 0;
  while (generation === state.generation) {
    state.abort = new AbortController();
    try {
      const answer = await getJSON("/updates", {
        user: state.me, after: state.last, wait: 25, approvals: approvals.fingerprint ?? "",
        cards: cards.fingerprint ?? "",
      }, state.abort.signal);
      if (generation !== state.generation) return;
      failures = 0;
      state.last = answer.last;
      for (const view of answer.messages) store(view, true);
      if (answer.approvals !== approvals.fingerprint) await approvals.load();
      if (answer.cards !== cards.fingerprint) {
        cards.fingerprint = answer.cards;
        await cards.load();
      }
    } catch (error) {
      if (error.name === "AbortError" || generation !== state.generation) return;
      failures += 1;
      if (failures === 3) toast("与模拟器的连接中断，正在重试…", true);
      // Back off so a stopped emulator does not get hammered; any answer resets it.
      await new Promise((resolve) => setTimeout(resolve, Math.min(1000 * failures, 5000)));
    }
  }
}

function store(view, live) {
  if (state.seen.has(view.seq)) return;
  state.seen.add(view.seq);
  const list = state.messages.get(view.conversationId) || [];
  let index = list.length;
  while (index > 0 && list[index - 1].seq > view.seq) index--;
  list.splice(index, 0, view);
  state.messages.set(view.conversationId, list);
  const mine = view.direction === "in" && view.sender.id === state.me;
  if (view.conversationId === state.active && state.view === "chat") {
    appendMessage(view, index === list.length - 1);
  } else if (live && !mine) {
    state.unread.set(view.conversationId, (state.unread.get(view.conversationId) || 0) + 1);
  }
  drawConversations();
}

// ---- conversations ------------------------------------------------------------------

function drawConversations() {
  const ul = $("conv-list");
  ul.innerHTML = state.conversations.map((conv) => {
    const list = state.messages.get(conv.id) || [];
    const last = list[list.length - 1];
    const who = last && conv.type === "group" ? `${last.sender.name}：` : "";
    const unread = state.unread.get(conv.id) || 0;
    const icon = conv.type === "group"
      ? `<span class="avatar avatar--group avatar--${conv.kind}" aria-hidden="true">${conv.kind === "client" ? "客户" : "内部"}</span>`
      : avatarHtml({ ...conv.bot, type: "bot" });
    return `<li>
      <button type="button" class="conv${conv.id === state.active ? " is-active" : ""}" data-id="${escapeHtml(conv.id)}"
        ${conv.id === state.active ? 'aria-current="true"' : ""}>
        ${icon}
        <span class="conv-main">
          <span class="conv-top"><span class="conv-title" title="${escapeHtml(conv.title)}">${escapeHtml(conv.title)}</span>
            <time class="conv-time">${last ? formatTime(last.createdAt) : ""}</time></span>
          <span class="conv-bottom"><span class="conv-preview">${escapeHtml(last ? who + previewOf(last) : conv.type === "group" ? "群聊" : "与机器人单聊")}</span>
            ${unread ? `<span class="badge badge--inline">${unread}</span>` : ""}</span>
        </span>
      </button></li>`;
  }).join("");
  let total = 0;
  for (const n of state.unread.values()) total += n;
  setBadge("chat-badge", total);
}

function openConversation(id) {
  state.active = id;
  state.unread.delete(id);
  const conv = activeConversation();
  document.body.classList.add("show-chat");
  $("chat-title").textContent = conv.title;
  $("chat-sub").textContent = conv.type === "group" ? groupSubtitle(conv) : `与机器人「${conv.bot.name}」单聊`;
  const group = conv.type === "group";
  const botHere = group && conv.botAvailable !== false;
  $("mention-btn").hidden = !group;
  $("at-bot-wrap").hidden = !botHere;
  $("at-bot").checked = true;
  $("at-bot-text").textContent = `@${conv.bot.name}`;
  $("file-input").disabled = !conv.canSendFile;
  $("file-label").classList.toggle("is-disabled", !conv.canSendFile);
  $("file-label").title = conv.canSendFile ? "发送文件" : "钉钉不允许在群里给机器人发文件（模拟器启动时可用 --allow-group-files 放开）";
  $("composer-note").textContent = group && !botHere
    ? "应用机器人不能在外部群中（模拟器开关），这里的消息它收不到"
    : group && conv.canSendFile ? "本模拟器已允许群内发文件（真实钉钉不允许），用于提交交付物" : "";
  const ol = $("messages");
  ol.innerHTML = "";
  const list = state.messages.get(id) || [];
  for (const view of list) ol.appendChild(renderMessage(view, state.me));
  keepPinned(ol);
  cards.show(conv);
  $("empty-hint").hidden = list.length > 0;
  drawConversations();
  syncUrl();
  state.stick = true;
  ol.scrollTop = ol.scrollHeight;
}

function groupSubtitle(conv) {
  const parts = [`${conv.memberIds.length} 人`, conv.kind === "client" ? "外部群（含客户）" : "内部群"];
  parts.push(conv.botAvailable === false ? `群机器人「${conv.bot.name}」不可用（外部群）` : `群机器人「${conv.bot.name}」`);
  for (const robot of conv.customRobots || []) parts.push(`自定义机器人「${robot.name}」`);
  return parts.join(" · ");
}

// Images load after they are laid out; keep the view pinned to the newest message
// unless the reader scrolled up.
function keepPinned(root) {
  for (const img of root.querySelectorAll("img")) {
    img.addEventListener("load", () => {
      if (state.stick) $("messages").scrollTop = $("messages").scrollHeight;
    }, { once: true });
  }
}

function appendMessage(view, atEnd) {
  const ol = $("messages");
  const nearBottom = ol.scrollHeight - ol.scrollTop - ol.clientHeight < 80;
  const li = renderMessage(view, state.me);
  if (atEnd) {
    ol.appendChild(li);
  } else {
    const next = [...ol.children].find((el) => Number(el.dataset.seq) > view.seq);
    ol.insertBefore(li, next || null);
  }
  $("empty-hint").hidden = true;
  const mine = view.direction === "in" && view.sender.id === state.me;
  if (nearBottom || mine) {
    state.stick = true;
    ol.scrollTop = ol.scrollHeight;
  }
  keepPinned(li);
}

// ---- sending ------------------------------------------------------------------------

// Who the text @'s: everyone picked from the list, and typed names only one member has.
function mentionsOf(conv, text, picked) {
  if (conv.type !== "group") return [];
  const others = conv.memberIds.filter((id) => id !== state.me).map((id) => state.users.get(id));
  const count = new Map();
  for (const user of others) count.set(user.name, (count.get(user.name) || 0) + 1);
  const typed = others.filter((u) => count.get(u.name) === 1 && text.includes(`@${u.name}`)).map((u) => u.id);
  return [...new Set([...picked.filter((id) => conv.memberIds.includes(id)), ...typed])];
}

async function sendText(text, picked = []) {
  const conv = activeConversation();
  if (!conv) return false;
  const group = conv.type === "group";
  try {
    const answer = await postJSON("/messages", {
      user: state.me, conversation: conv.id, text, mentions: mentionsOf(conv, text, picked),
      atBot: !group || (conv.botAvailable !== false && $("at-bot").checked),
    });
    store(answer.message, false);
    return true;
  } catch (error) {
    toast(error.message, true);
    return false;
  }
}

async function sendFile(file, kind) {
  const conv = activeConversation();
  if (!conv) return;
  try {
    const answer = await postForm("/files", { user: state.me, conversation: conv.id, kind }, file);
    store(answer.message, false);
  } catch (error) {
    toast(error.message, true);
  }
}

// ---- views --------------------------------------------------------------------------

function showView(view) {
  state.view = view;
  for (const button of document.querySelectorAll(".rail-btn")) {
    const on = button.dataset.view === view;
    button.classList.toggle("is-active", on);
    button.setAttribute("aria-pressed", String(on));
  }
  $("chat-sidebar").hidden = view !== "chat";
  $("chat-view").hidden = view !== "chat";
  $("approvals-view").hidden = view !== "approvals";
  $("todos-view").hidden = view !== "todos";
  $("notices-view").hidden = view !== "notices";
  $("workbench-view").hidden = view !== "workbench";
  document.body.dataset.view = view;
  if (view === "chat" && state.active) openConversation(state.active);
  if (view === "approvals") approvals.load().catch((error) => toast(error.message, true));
  if (view === "workbench") workbench.load();
  if (view === "notices") notices.read();
  syncUrl();
}

function wire() {
  for (const button of document.querySelectorAll(".rail-btn")) {
    button.addEventListener("click", () => showView(button.dataset.view));
  }
  $("conv-list").addEventListener("click", (event) => {
    const button = event.target.closest("[data-id]");
    if (button) openConversation(button.dataset.id);
  });
  $("back-btn").addEventListener("click", () => document.body.classList.remove("show-chat"));
  $("messages").addEventListener("scroll", () => {
    const ol = $("messages");
    state.stick = ol.scrollHeight - ol.scrollTop - ol.clientHeight < 80;
  }, { passive: true });
  // dtmd://dingtalkclient/sendMessage links and buttons make the user send their text.
  $("messages").addEventListener("click", (event) => {
    const link = event.target.closest(".md-send");
    if (!link) return;
    event.preventDefault();
    sendText(link.dataset.send);
  });
}

async function main() {
  wire();
  try {
    state.world = await getJSON("/world");
  } catch (error) {
    toast(`无法连接模拟器：${error.message}`, true);
    return;
  }
  for (const user of state.world.users) state.users.set(user.id, user);
  registerPeople(state.world.users.map((u) => u.id));
  fillUserSelect();
  const params = new URLSearchParams(location.search);
  const first = state.users.has(params.get("user")) ? params.get("user") : state.world.users[0].id;
  await switchUser(first, params.get("c"));
  showView(VIEWS.includes(params.get("view")) ? params.get("view") : "chat");
  document.body.classList.add("is-ready");
}

main();
