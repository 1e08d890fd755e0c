// confab's web chat: a client of the public API like any other. It signs in as a
// guest (POST /auth/guest, token kept in localStorage), reads and changes
// conversations over REST, and follows the open conversation over /ws, resuming with
// `subscribe` + `after_seq` after the network drops so that no message is lost or
// shown twice. Plain ES module, no framework; every text from the server goes through
// textContent, except the Markdown of bot, agent and system messages, which
// markdown.js renders and sanitizes.
//
// A user may ask for a person ("Talk to a person": POST /conversations/{id}/handoff);
// the conversation's `handoff` state (bot, waiting, agent), from the conversation
// resource and live from `handoff` frames and the `system` notices that record each
// change, shows in a banner above the messages, and an agent's messages are signed
// with their name.
//
// With `?embed=1&bot=ID` (the frame of widget.js) the page is one conversation with
// one bot, kept across visits: no list, no bot picker, the conversation remembered in
// localStorage per bot.

import { renderMarkdown, renderMarkdownSoon } from './markdown.js';

const TOKEN_KEY = 'confab.token';
const LAST_BOT_KEY = 'confab.bot';
// The widget's conversation with each bot: `confab.embed.<bot id>` → conversation id.
const EMBED_KEY_PREFIX = 'confab.embed.';
const PAGE_SIZE = 50;
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 15000;
const TYPING_EVERY_MS = 3000;
// An agent's `typing` frame says they type, never that they stopped (a bot's does):
// the indicator fades this long after the last one.
const AGENT_TYPING_MS = 6000;
// A socket whose peer vanished without closing (a cut network) stays "open" in the
// browser; a `ping` every HEARTBEAT_MS must get some frame back within SILENCE_MS.
const HEARTBEAT_MS = 25000;
const SILENCE_MS = 10000;

const $ = (id) => document.getElementById(id);

const embed = embedSettings(new URLSearchParams(location.search));

/** What the widget asked for in the frame's address, or null for the whole page. */
function embedSettings(params) {
  if (params.get('embed') !== '1') return null;
  return {
    bot: params.get('bot') || null,
    title: params.get('title') || null,
    color: params.get('color') || null,
  };
}

const ui = {
  body: document.body,
  connection: $('connection'),
  connectionText: $('connection-text'),
  drawerToggle: $('drawer-toggle'),
  sidebar: $('sidebar'),
  backdrop: $('backdrop'),
  newChat: $('new-chat'),
  newChatButton: $('new-chat-button'),
  botSelect: $('bot-select'),
  botDescription: $('bot-description'),
  tabs: [$('tab-active'), $('tab-archived')],
  list: $('conversation-list'),
  listEmpty: $('list-empty'),
  chat: $('chat'),
  emptyState: $('empty-state'),
  conversation: $('conversation'),
  title: $('conversation-title'),
  meta: $('conversation-meta'),
  handoffBar: $('handoff-bar'),
  handoffState: $('handoff-state'),
  handoffButton: $('handoff-button'),
  archiveButton: $('archive-button'),
  deleteButton: $('delete-button'),
  scroller: $('log-scroller'),
  loadOlder: $('load-older'),
  historyStart: $('history-start'),
  messages: $('messages'),
  quickReplies: $('quick-replies'),
  typing: $('typing'),
  typingText: $('typing-text'),
  composer: $('composer'),
  input: $('composer-input'),
  archivedNote: $('archived-note'),
  deleteDialog: $('delete-dialog'),
  toast: $('toast'),
};

const state = {
  auth: null, // {token, user_id, expires_at}
  bots: new Map(), // id -> bot
  listStatus: 'active',
  conversations: [], // the list as last fetched
  currentId: null,
  convs: new Map(), // conversation id -> ConversationView
  socket: null,
  socketOpen: false,
  connections: 0,
  reconnectTimer: null,
  backoffMs: BACKOFF_FIRST_MS,
  holdReconnect: false,
  failedOpens: 0,
  lastTypingSent: 0,
  listRefreshTimer: null,
};

// ---------------------------------------------------------------------------
// Conversation state: messages by id, ordered by seq, plus the replies streaming.
// ---------------------------------------------------------------------------

class ConversationView {
  constructor(info) {
    this.info = info;
    this.messages = new Map(); // id -> message
    this.pending = new Map(); // client_message_id -> {content, error}
    this.streams = new Map(); // reply_id -> {text, index}
    this.maxSeq = 0; // greatest seq seen: where a resume starts
    this.minSeq = null; // smallest seq loaded: where `before` paging continues
    this.hasOlder = false;
    this.loaded = false;
    this.loadingOlder = false;
    this.botTyping = false;
    this.agentTyping = false;
    this.agentTypingTimer = null;
    // The conversation came back from a person to its bot while shown: the banner
    // says so until the user writes again.
    this.backToBot = false;
  }

  /** Adds a stored message; false when it was already there (a replay or a retry). */
  add(message) {
    if (this.messages.has(message.id)) return false;
    this.messages.set(message.id, message);
    this.maxSeq = Math.max(this.maxSeq, message.seq);
    this.minSeq = this.minSeq === null ? message.seq : Math.min(this.minSeq, message.seq);
    if (message.client_message_id) this.pending.delete(message.client_message_id);
    this.streams.delete(message.id);
    return true;
  }
}

const current = () => (state.currentId ? state.convs.get(state.currentId) : null);

// ---------------------------------------------------------------------------
// REST, with a guest token fetched (again) when missing, expired or refused.
// ---------------------------------------------------------------------------

class HttpError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.code = problem?.code;
  }
}

function loadStoredToken() {
  try {
    const stored = JSON.parse(localStorage.getItem(TOKEN_KEY) || 'null');
    if (stored && stored.token && Date.parse(stored.expires_at) > Date.now() + 60_000) {
      return stored;
    }
  } catch {
    // A corrupt entry is as good as none: a new guest token replaces it.
  }
  return null;
}

let renewal = null;

/** A new guest token; calls made together share one request, so they share one guest. */
function newGuestToken() {
  renewal ??= requestGuestToken().finally(() => {
    renewal = null;
  });
  return renewal;
}

async function requestGuestToken() {
  const response = await fetch('/auth/guest', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: '{}',
  });
  if (!response.ok) throw new HttpError(response.status, await problemOf(response));
  state.auth = await response.json();
  localStorage.setItem(TOKEN_KEY, JSON.stringify(state.auth));
  return state.auth;
}

async function ensureToken() {
  if (state.auth && Date.parse(state.auth.expires_at) > Date.now() + 60_000) return state.auth;
  return loadStoredToken() ?? newGuestToken();
}

async function problemOf(response) {
  try {
    return await response.json();
  } catch {
    return null;
  }
}

async function api(path, { method = 'GET', body, retried = false } = {}) {
  const auth = await ensureToken();
  state.auth = auth;
  const headers = { Authorization: `Bearer ${auth.token}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401 && !retried) {
    // The token expired or the server's secret changed: start over as a new guest,
    // unless a call that failed alongside this one already did.
    if (state.auth?.token === auth.token) {
      await newGuestToken();
      resetConversations();
      // The socket still speaks for the old guest.
      if (state.socket) dropSocket();
    }
    return api(path, { method, body, retried: true });
  }
  if (!response.ok) throw new HttpError(response.status, await problemOf(response));
  if (response.status === 204) return null;
  return response.json();
}

// ---------------------------------------------------------------------------
// The socket: one per page, resumed with back-off after every drop.
// ---------------------------------------------------------------------------

function setConnection(kind, text) {
  ui.connection.dataset.state = kind;
  ui.connectionText.textContent = text;
}

async function connect() {
  clearTimeout(state.reconnectTimer);
  state.reconnectTimer = null;
  if (state.socket || state.holdReconnect) return;
  setConnection('connecting', 'Connecting…');
  let auth;
  try {
    if (state.failedOpens >= 2) {
      // A refused upgrade looks like any other drop from here; a REST call tells
      // whether the token is the reason, and `api` replaces it if so.
      await api('/conversations?limit=1');
    }
    auth = await ensureToken();
  } catch {
    scheduleReconnect();
    return;
  }
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const socket = new WebSocket(`${scheme}//${location.host}/ws?token=${encodeURIComponent(auth.token)}`);
  state.socket = socket;
  let lastFrameAt = Date.now();
  const heartbeat = setInterval(() => {
    if (state.socket !== socket) {
      clearInterval(heartbeat);
    } else if (state.socketOpen && Date.now() - lastFrameAt > HEARTBEAT_MS + SILENCE_MS) {
      dropSocket();
    } else {
      send({ type: 'ping' });
    }
  }, HEARTBEAT_MS);
  socket.addEventListener('open', () => {
    if (state.socket !== socket) return;
    state.socketOpen = true;
    state.connections += 1;
    state.failedOpens = 0;
    state.backoffMs = BACKOFF_FIRST_MS;
    setConnection('online', 'Connected');
    const view = current();
    if (view && view.loaded) {
      subscribe(view);
      resendPending(view);
    }
  });
  socket.addEventListener('message', (event) => {
    if (state.socket !== socket) return;
    lastFrameAt = Date.now();
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    handleFrame(frame);
  });
  socket.addEventListener('close', () => {
    clearInterval(heartbeat);
    if (state.socket !== socket) return;
    if (!state.socketOpen) state.failedOpens += 1;
    state.socket = null;
    state.socketOpen = false;
    setBotTyping(current(), false);
    scheduleReconnect();
  });
}

function scheduleReconnect() {
  if (state.holdReconnect) {
    setConnection('offline', 'Offline');
    return;
  }
  if (state.reconnectTimer) return;
  // Full jitter keeps many pages that lost the same server from coming back at once.
  const delay = Math.round(state.backoffMs / 2 + (Math.random() * state.backoffMs) / 2);
  state.backoffMs = Math.min(state.backoffMs * 2, BACKOFF_MAX_MS);
  setConnection('offline', `Offline — retrying in ${Math.max(1, Math.round(delay / 1000))} s`);
  state.reconnectTimer = setTimeout(() => {
    state.reconnectTimer = null;
    connect();
  }, delay);
}

function dropSocket() {
  const socket = state.socket;
  if (socket) socket.close(4000, 'dropped by the page');
  // The close event comes later; act now so that the page is offline at once.
  state.socket = null;
  state.socketOpen = false;
  if (socket) scheduleReconnect();
}

function send(frame) {
  if (!state.socketOpen) return false;
  state.socket.send(JSON.stringify(frame));
  return true;
}

function subscribe(view) {
  send({ type: 'subscribe', conversation_id: view.info.id, after_seq: view.maxSeq });
}

/**
 * Sends again what was sent but never acknowledged: the same `client_message_id` makes
 * the server store it once, and answer with the stored message if it already has it.
 */
function resendPending(view) {
  for (const [clientId, entry] of view.pending) {
    // An entry with metadata went through REST, which the socket cannot carry.
    if (entry.error || entry.metadata) continue;
    send({ type: 'message', conversation_id: view.info.id, content: entry.content, client_message_id: clientId, ref: clientId });
  }
}

function handleFrame(frame) {
  switch (frame.type) {
    case 'message':
      onMessage(frame);
      break;
    case 'delta':
      onDelta(frame);
      break;
    case 'typing':
      if (frame.sender === 'bot') setBotTyping(state.convs.get(frame.conversation_id), frame.active);
      else if (frame.sender === 'agent') setAgentTyping(state.convs.get(frame.conversation_id), frame.active);
      break;
    case 'handoff':
      onHandoff(frame);
      break;
    case 'status':
      if (frame.conversation_id) onStatus(frame);
      break;
    case 'error':
      onError(frame);
      break;
    default:
      // connected, subscribed, started, pong and whatever comes later: nothing to do.
      break;
  }
}

function onMessage(message) {
  const view = state.convs.get(message.conversation_id);
  // Only the followed conversation takes frames: a late frame of one left behind
  // would move its maxSeq past messages it never got.
  if (!view || message.conversation_id !== state.currentId) return;
  if (view.add(message)) {
    renderMessage(view, message);
    if (message.sender === 'bot') setBotTyping(view, false);
    if (message.sender === 'agent') setAgentTyping(view, false);
    // A notice replayed after a reconnect carries the change its frame announced.
    const handoff = handoffOfNotice(message);
    if (handoff) applyHandoff(view, handoff, message.metadata.agent_id ?? null);
    if (message.sender === 'user' && view.backToBot) {
      view.backToBot = false;
      renderHandoff(view);
    }
    scheduleListRefresh();
  }
}

/** The handoff state a `system` notice records, or null for any other message. */
function handoffOfNotice(message) {
  const handoff = message.sender === 'system' ? message.metadata?.handoff : null;
  return ['bot', 'waiting', 'agent'].includes(handoff) ? handoff : null;
}

function onHandoff(frame) {
  const view = state.convs.get(frame.conversation_id);
  if (view) applyHandoff(view, frame.handoff, frame.agent_id ?? null);
  scheduleListRefresh();
}

/** Moves the view to a handoff state, from a frame, a notice or the REST answer. */
function applyHandoff(view, handoff, agentId) {
  const before = view.info.handoff ?? 'bot';
  if (handoff === 'bot' && before !== 'bot') view.backToBot = true;
  if (handoff !== 'bot') view.backToBot = false;
  if (handoff !== before) view.info.handoff_since = new Date().toISOString();
  view.info.handoff = handoff;
  view.info.handoff_agent = handoff === 'agent' ? agentId : null;
  if (handoff !== 'agent') setAgentTyping(view, false);
  renderHandoff(view);
}

function onDelta(delta) {
  const view = state.convs.get(delta.conversation_id);
  if (!view || delta.conversation_id !== state.currentId || view.messages.has(delta.reply_id)) return;
  const stream = view.streams.get(delta.reply_id) ?? { text: '', index: -1 };
  if (delta.snapshot) {
    stream.text = delta.content;
  } else if (delta.index > stream.index) {
    stream.text += delta.content;
  } else {
    return;
  }
  stream.index = Math.max(stream.index, delta.index ?? 0);
  view.streams.set(delta.reply_id, stream);
  renderStream(view, delta.reply_id, stream.text);
}

function onStatus(frame) {
  const view = state.convs.get(frame.conversation_id);
  if (frame.status === 'deleted') {
    state.convs.delete(frame.conversation_id);
    if (state.currentId === frame.conversation_id) closeConversation();
  } else if (view) {
    view.info.status = frame.status;
    if (state.currentId === frame.conversation_id) {
      renderHeader(view);
      renderQuickReplies(view);
    }
  }
  scheduleListRefresh();
}

function onError(frame) {
  const view = current();
  if (view && frame.ref && view.pending.has(frame.ref)) {
    view.pending.get(frame.ref).error = frame.message;
    renderPending(view, frame.ref);
    return;
  }
  if (frame.code !== 'not_found') toast(frame.message || 'The server refused a request.');
}

// ---------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dayFormat = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });

function shortTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  const today = new Date();
  return date.toDateString() === today.toDateString() ? timeFormat.format(date) : dayFormat.format(date);
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function senderLabel(view, message) {
  if (message.sender === 'user') return 'You';
  if (message.sender === 'system') return 'confab';
  if (message.sender === 'agent') return agentLabel(message.sender_id);
  return botName(view.info.bot_id);
}

/** A person answering in the bot's place, by their user id. */
function agentLabel(agentId) {
  return `${agentId || 'A person'} (agent)`;
}

function botName(botId) {
  return state.bots.get(botId)?.name ?? botId;
}

function safeUrl(url) {
  try {
    const parsed = new URL(url, location.href);
    return ['http:', 'https:'].includes(parsed.protocol) ? parsed.href : null;
  } catch {
    return null;
  }
}

function messageNode(view, message) {
  if (handoffOfNotice(message)) return noticeNode(message);
  const item = el('li', `message from-${message.sender}`);
  item.dataset.id = message.id;
  item.dataset.seq = String(message.seq);
  let spoken = '';
  if (message.content) {
    const bubble = bubbleOf(message.sender, message.content);
    item.append(bubble);
    spoken = bubble.textContent;
  }
  item.setAttribute('aria-label', `${senderLabel(view, message)}: ${spoken}`);
  const attachments = attachmentsNode(message.attachments ?? []);
  if (attachments) item.append(attachments);
  const meta = el('p', 'message-meta');
  const time = el('time', null, shortTime(message.timestamp));
  time.dateTime = message.timestamp;
  meta.append(`${senderLabel(view, message)} · `, time);
  item.append(meta);
  return item;
}

/**
 * A handoff notice ("alice joined"): a line across the log rather than a bubble, in
 * plain text (it names a user id, which is no Markdown).
 */
function noticeNode(message) {
  const item = el('li', 'message from-system notice');
  item.dataset.id = message.id;
  item.dataset.seq = String(message.seq);
  item.dataset.handoff = handoffOfNotice(message);
  const time = el('time', null, shortTime(message.timestamp));
  time.dateTime = message.timestamp;
  const line = el('p', 'notice-line');
  line.append(el('span', 'bubble', message.content), ' · ', time);
  item.append(line);
  return item;
}

/** A message's text: the user's as typed, everyone else's as Markdown. */
function bubbleOf(sender, content) {
  const bubble = el('div', 'bubble');
  if (sender === 'user') {
    bubble.textContent = content;
  } else {
    bubble.classList.add('markdown');
    renderMarkdown(bubble, content);
  }
  return bubble;
}

/** Images as thumbnails that open full size, other files as cards; null if none to show. */
function attachmentsNode(attachments) {
  const shown = attachments.filter((a) => safeUrl(a.url));
  if (shown.length === 0) return null;
  const list = el('ul', 'attachments');
  list.setAttribute('aria-label', 'Attachments');
  for (const attachment of shown) {
    const item = el('li');
    const image = isImage(attachment) ? imageUrl(attachment.url) : null;
    item.append(image ? thumbnail(attachment, image) : fileCard(attachment));
    list.append(item);
  }
  return list;
}

function isImage(attachment) {
  if (attachment.content_type) return attachment.content_type.toLowerCase().startsWith('image/');
  if (attachment.type === 'image') return true;
  try {
    return /\.(png|jpe?g|gif|webp|avif|svg)$/i.test(new URL(attachment.url).pathname);
  } catch {
    return false;
  }
}

/**
 * Where an image may be loaded from: https, or this page's own origin. An image
 * from a plain http address would be mixed content on a https page, so it is a
 * card (a link) instead.
 */
function imageUrl(url) {
  const href = safeUrl(url);
  if (!href) return null;
  const parsed = new URL(href);
  return parsed.protocol === 'https:' || parsed.origin === location.origin ? href : null;
}

function externalLink(href, className) {
  const link = el('a', className);
  link.href = href;
  link.target = '_blank';
  link.rel = 'noopener noreferrer';
  return link;
}

function thumbnail(attachment, href) {
  const name = attachment.name || 'image';
  const link = externalLink(href, 'attachment-image');
  link.setAttribute('aria-label', `${name}, open full size`);
  const image = el('img');
  image.alt = name;
  image.loading = 'lazy';
  image.decoding = 'async';
  image.referrerPolicy = 'no-referrer';
  // An image that does not load becomes the card a file would have been.
  image.addEventListener('error', () => link.replaceWith(fileCard(attachment)), { once: true });
  image.src = href;
  link.append(image);
  return link;
}

function fileCard(attachment) {
  const link = externalLink(safeUrl(attachment.url), 'attachment-file');
  const kind = attachment.content_type || attachment.type || 'file';
  const size = attachment.size_bytes ? ` · ${formatSize(attachment.size_bytes)}` : '';
  const text = el('span', 'file-text');
  text.append(
    el('span', 'file-name', attachment.name || attachment.url),
    el('span', 'file-type', `${kind}${size}`),
  );
  link.append(paperclip(), text);
  return link;
}

function paperclip() {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('width', '14');
  svg.setAttribute('height', '14');
  svg.setAttribute('aria-hidden', 'true');
  const path = document.createElementNS(ns, 'path');
  path.setAttribute('d', 'M21 11.5l-8.6 8.6a5.5 5.5 0 01-7.8-7.8l8.6-8.6a3.7 3.7 0 015.2 5.2l-8.6 8.6a1.8 1.8 0 01-2.6-2.6l7.9-7.9');
  path.setAttribute('fill', 'none');
  path.setAttribute('stroke', 'currentColor');
  path.setAttribute('stroke-width', '2');
  path.setAttribute('stroke-linecap', 'round');
  svg.append(path);
  return svg;
}

function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

/** Places `node` among the messages by seq; most arrive last, so search from the end. */
function placeBySeq(node, seq) {
  let after = ui.messages.lastElementChild;
  while (after && (after.dataset.seq === undefined || Number(after.dataset.seq) > seq)) {
    after = after.previousElementSibling;
  }
  if (after) after.after(node);
  else ui.messages.prepend(node);
}

function nearBottom() {
  const s = ui.scroller;
  return s.scrollHeight - s.scrollTop - s.clientHeight < 80;
}

function scrollToBottom() {
  ui.scroller.scrollTop = ui.scroller.scrollHeight;
}

function renderMessage(view, message) {
  if (view !== current()) return;
  const stick = nearBottom() || message.sender === 'user';
  const node = messageNode(view, message);
  const streamed = ui.messages.querySelector(`[data-reply-id="${CSS.escape(message.id)}"]`);
  const pending = message.client_message_id
    ? ui.messages.querySelector(`[data-pending="${CSS.escape(message.client_message_id)}"]`)
    : null;
  streamed?.remove();
  pending?.remove();
  placeBySeq(node, message.seq);
  renderHistoryControls(view);
  renderQuickReplies(view);
  if (stick) scrollToBottom();
}

function renderStream(view, replyId, text) {
  if (view !== current()) return;
  const stick = nearBottom();
  let node = ui.messages.querySelector(`[data-reply-id="${CSS.escape(replyId)}"]`);
  if (!node) {
    node = el('li', 'message from-bot streaming');
    node.dataset.replyId = replyId;
    // Announced once complete, as the stored message, not word by word.
    node.setAttribute('aria-hidden', 'true');
    node.append(el('div', 'bubble markdown'));
    node.append(el('p', 'message-meta', `${botName(view.info.bot_id)} · writing…`));
    ui.messages.append(node);
    renderQuickReplies(view);
  }
  renderMarkdownSoon(node.querySelector('.bubble'), text, () => {
    if (stick) scrollToBottom();
  });
}

function renderPending(view, clientId) {
  if (view !== current()) return;
  const entry = view.pending.get(clientId);
  let node = ui.messages.querySelector(`[data-pending="${CSS.escape(clientId)}"]`);
  if (!entry) {
    node?.remove();
    return;
  }
  if (!node) {
    node = el('li', 'message from-user pending');
    node.dataset.pending = clientId;
    node.append(el('div', 'bubble', entry.content));
    node.append(el('p', 'message-meta', 'Sending…'));
    ui.messages.append(node);
    renderQuickReplies(view);
    scrollToBottom();
  }
  if (entry.error) {
    node.classList.add('failed');
    const meta = node.querySelector('.message-meta');
    meta.textContent = `Not sent: ${entry.error}`;
    meta.classList.add('message-error');
  }
}

function renderConversation(view) {
  ui.messages.setAttribute('aria-busy', 'true');
  ui.messages.replaceChildren();
  const sorted = [...view.messages.values()].sort((a, b) => a.seq - b.seq);
  ui.messages.append(...sorted.map((m) => messageNode(view, m)));
  for (const [replyId, stream] of view.streams) renderStream(view, replyId, stream.text);
  for (const clientId of view.pending.keys()) renderPending(view, clientId);
  ui.messages.removeAttribute('aria-busy');
  renderHistoryControls(view);
  renderHeader(view);
  renderQuickReplies(view);
  setBotTyping(view, view.botTyping);
  scrollToBottom();
}

/**
 * The quick replies of the newest message, when it is a bot's (or anyone's but the
 * user's) and nothing has followed it: no answer on its way, no reply streaming.
 */
function quickRepliesOf(view) {
  if (view.info.status === 'archived' || view.pending.size > 0 || view.streams.size > 0) return null;
  let newest = null;
  for (const message of view.messages.values()) {
    if (!newest || message.seq > newest.seq) newest = message;
  }
  if (!newest || newest.sender === 'user') return null;
  const suggestions = (newest.suggestions ?? []).filter((s) => typeof s?.text === 'string' && s.text.trim());
  return suggestions.length > 0 ? { message: newest, suggestions } : null;
}

/**
 * Shows the quick replies as buttons under the newest message, in a live region, so
 * that a screen reader reads them out as they come; they go once the user answers.
 */
function renderQuickReplies(view) {
  if (view !== current()) return;
  const offer = quickRepliesOf(view);
  const shownFor = ui.quickReplies.dataset.for ?? '';
  if ((offer?.message.id ?? '') === shownFor) return;
  if (!offer) {
    delete ui.quickReplies.dataset.for;
    ui.quickReplies.hidden = true;
    ui.quickReplies.replaceChildren();
    return;
  }
  ui.quickReplies.dataset.for = offer.message.id;
  const group = el('div', 'quick-reply-buttons');
  group.setAttribute('role', 'group');
  group.setAttribute('aria-label', 'Suggested replies');
  for (const suggestion of offer.suggestions) {
    const button = el('button', 'quick-reply', suggestion.text);
    button.type = 'button';
    button.addEventListener('click', () => {
      const metadata = suggestion.value === undefined ? undefined : { suggestion_value: suggestion.value };
      sendText(view, suggestion.text, metadata);
      ui.input.focus();
    });
    group.append(button);
  }
  ui.quickReplies.replaceChildren(el('span', 'visually-hidden', 'Suggested replies:'), group);
  ui.quickReplies.hidden = false;
}

function renderHistoryControls(view) {
  ui.loadOlder.hidden = !view.hasOlder;
  ui.loadOlder.disabled = view.loadingOlder;
  ui.loadOlder.textContent = view.loadingOlder ? 'Loading…' : 'Load older messages';
  ui.historyStart.hidden = view.hasOlder || view.messages.size === 0;
}

function renderHeader(view) {
  const info = view.info;
  ui.title.textContent = conversationTitle(info);
  const bot = state.bots.get(info.bot_id);
  const about = info.title ? `with ${botName(info.bot_id)}` : (bot?.description ?? '');
  ui.meta.textContent = info.status === 'archived' ? `Archived · ${about}` : about;
  const archived = info.status === 'archived';
  ui.archiveButton.textContent = archived ? 'Unarchive' : 'Archive';
  ui.composer.hidden = archived;
  ui.archivedNote.hidden = !archived;
  renderHandoff(view);
}

/**
 * The handoff banner: who answers now, and the button that asks for a person, shown
 * only while the bot answers (asking again would change nothing).
 */
function renderHandoff(view) {
  if (view !== current()) return;
  const handoff = view.info.handoff ?? 'bot';
  let text = '';
  if (handoff === 'waiting') {
    text = 'Waiting for a person to join. The bot does not answer meanwhile.';
  } else if (handoff === 'agent') {
    text = `You are talking with ${view.info.handoff_agent || 'a person'}, a person, not the bot.`;
  } else if (view.backToBot) {
    text = `Back to the bot: ${botName(view.info.bot_id)} answers again.`;
  }
  ui.handoffBar.dataset.handoff = handoff === 'bot' && view.backToBot ? 'back' : handoff;
  if (ui.handoffState.textContent !== text) ui.handoffState.textContent = text;
  ui.handoffButton.hidden = handoff !== 'bot' || view.info.status === 'archived';
  ui.handoffBar.hidden = !text && ui.handoffButton.hidden;
}

function conversationTitle(info) {
  return info.title || `Chat with ${botName(info.bot_id)}`;
}

function setBotTyping(view, active) {
  if (!view) return;
  view.botTyping = active;
  renderTyping(view);
}

function setAgentTyping(view, active) {
  if (!view) return;
  clearTimeout(view.agentTypingTimer);
  view.agentTypingTimer = active ? setTimeout(() => setAgentTyping(view, false), AGENT_TYPING_MS) : null;
  view.agentTyping = active;
  renderTyping(view);
}

function renderTyping(view) {
  if (view !== current()) return;
  let who = null;
  if (view.botTyping) who = botName(view.info.bot_id);
  else if (view.agentTyping) who = agentLabel(view.info.handoff_agent);
  ui.typing.hidden = !who;
  ui.typingText.textContent = who ? `${who} is typing…` : '';
}

function renderList() {
  ui.list.replaceChildren();
  for (const info of state.conversations) {
    const button = el('button', 'conversation-item');
    button.type = 'button';
    button.dataset.id = info.id;
    if (info.id === state.currentId) button.setAttribute('aria-current', 'true');
    button.append(
      el('span', 'item-title', conversationTitle(info)),
      el('span', 'item-time', shortTime(info.last_activity)),
      el('span', 'item-preview', info.last_message || 'No messages yet'),
    );
    button.addEventListener('click', () => openConversation(info.id));
    const item = el('li');
    item.append(button);
    ui.list.append(item);
  }
  ui.listEmpty.hidden = state.conversations.length > 0;
  ui.listEmpty.textContent =
    state.listStatus === 'archived' ? 'No archived conversations.' : 'No conversations yet.';
}

let toastTimer = null;
function toast(text) {
  ui.toast.textContent = text;
  ui.toast.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    ui.toast.hidden = true;
  }, 5000);
}

// ---------------------------------------------------------------------------
// Actions
// ---------------------------------------------------------------------------

async function loadBots() {
  const { bots } = await api('/bots');
  state.bots = new Map(bots.map((bot) => [bot.id, bot]));
  ui.botSelect.replaceChildren(
    ...bots.map((bot) => {
      const option = el('option', null, bot.name);
      option.value = bot.id;
      return option;
    }),
  );
  const remembered = localStorage.getItem(LAST_BOT_KEY);
  if (remembered && state.bots.has(remembered)) ui.botSelect.value = remembered;
  showBotDescription();
}

function showBotDescription() {
  ui.botDescription.textContent = state.bots.get(ui.botSelect.value)?.description ?? '';
}

async function refreshList() {
  // The widget shows one conversation and no list.
  if (embed) return;
  const status = state.listStatus;
  const { conversations } = await api(`/conversations?status=${status}&limit=100`);
  if (status !== state.listStatus) return;
  state.conversations = conversations;
  for (const info of conversations) {
    const view = state.convs.get(info.id);
    if (view) view.info = { ...view.info, ...info };
  }
  renderList();
}

function scheduleListRefresh() {
  clearTimeout(state.listRefreshTimer);
  state.listRefreshTimer = setTimeout(() => refreshList().catch(() => {}), 250);
}

async function setListStatus(status) {
  state.listStatus = status;
  for (const tab of ui.tabs) tab.setAttribute('aria-pressed', String(tab.dataset.status === status));
  await refreshList();
}

async function startConversation(event) {
  event.preventDefault();
  const botId = ui.botSelect.value;
  if (!botId) return;
  localStorage.setItem(LAST_BOT_KEY, botId);
  ui.newChatButton.disabled = true;
  try {
    const started = await api('/conversations/start', { method: 'POST', body: { bot_id: botId } });
    if (state.listStatus !== 'active') await setListStatus('active');
    await openConversation(started.conversation_id);
    scheduleListRefresh();
  } catch (error) {
    toast(`Could not start the conversation: ${error.message}`);
  } finally {
    ui.newChatButton.disabled = false;
  }
}

async function openConversation(id) {
  const previous = current();
  if (previous && previous.info.id !== id) {
    send({ type: 'unsubscribe', conversation_id: previous.info.id });
    previous.streams.clear();
    previous.botTyping = false;
    setAgentTyping(previous, false);
    previous.backToBot = false;
  }
  state.currentId = id;
  history.replaceState(null, '', `#${id}`);
  closeDrawer();
  for (const button of ui.list.querySelectorAll('.conversation-item')) {
    if (button.dataset.id === id) button.setAttribute('aria-current', 'true');
    else button.removeAttribute('aria-current');
  }
  let view = state.convs.get(id);
  try {
    if (!view) {
      const info = await api(`/conversations/${encodeURIComponent(id)}`);
      view = new ConversationView(info);
      state.convs.set(id, view);
    }
    if (state.currentId !== id) return;
    ui.emptyState.hidden = true;
    ui.conversation.hidden = false;
    if (!view.loaded) {
      const page = await api(`/conversations/${encodeURIComponent(id)}/history?limit=${PAGE_SIZE}`);
      for (const message of page.messages) view.add(message);
      view.hasOlder = page.has_more;
      view.loaded = true;
    }
    if (state.currentId !== id) return;
    renderConversation(view);
    // Resume where this view stops: the server replays what came meanwhile.
    subscribe(view);
    if (view.info.status !== 'archived') ui.input.focus();
  } catch (error) {
    if (error.status === 404) {
      state.convs.delete(id);
      closeConversation();
      scheduleListRefresh();
    }
    toast(`Could not open the conversation: ${error.message}`);
  }
}

function closeConversation() {
  state.currentId = null;
  history.replaceState(null, '', location.pathname + location.search);
  ui.conversation.hidden = true;
  ui.emptyState.hidden = false;
  ui.messages.replaceChildren();
  ui.quickReplies.hidden = true;
  ui.quickReplies.replaceChildren();
  delete ui.quickReplies.dataset.for;
  renderList();
}

async function loadOlder() {
  const view = current();
  if (!view || !view.hasOlder || view.loadingOlder || view.minSeq === null) return;
  view.loadingOlder = true;
  renderHistoryControls(view);
  const id = view.info.id;
  try {
    const page = await api(
      `/conversations/${encodeURIComponent(id)}/history?limit=${PAGE_SIZE}&before=${view.minSeq}`,
    );
    const scroller = ui.scroller;
    const fromBottom = scroller.scrollHeight - scroller.scrollTop;
    ui.messages.setAttribute('aria-busy', 'true');
    for (const message of page.messages) {
      if (view.add(message) && view === current()) placeBySeq(messageNode(view, message), message.seq);
    }
    ui.messages.removeAttribute('aria-busy');
    view.hasOlder = page.has_more;
    // Keep the message the reader was looking at where it was.
    scroller.scrollTop = scroller.scrollHeight - fromBottom;
  } catch (error) {
    toast(`Could not load older messages: ${error.message}`);
  } finally {
    view.loadingOlder = false;
    if (view === current()) renderHistoryControls(view);
  }
}

function sendMessage(event) {
  event.preventDefault();
  const view = current();
  const content = ui.input.value.trim();
  if (!view || !content) return;
  ui.input.value = '';
  autosize();
  sendText(view, content);
}

/**
 * Sends `content` as the user's message, shown at once as pending. Over the socket
 * when it is open; through REST when it is not, or when there is `metadata` (a
 * socket frame carries none).
 */
async function sendText(view, content, metadata) {
  const clientId = crypto.randomUUID();
  view.pending.set(clientId, { content, metadata, error: null });
  renderPending(view, clientId);
  if (!metadata) {
    const frame = { type: 'message', conversation_id: view.info.id, content, client_message_id: clientId, ref: clientId };
    if (send(frame)) return;
  }
  // Offline, REST stores it now and the message itself comes with the resume replay;
  // online, it comes over the socket like any other.
  try {
    await api(`/conversations/${encodeURIComponent(view.info.id)}/messages`, {
      method: 'POST',
      body: metadata ? { content, client_message_id: clientId, metadata } : { content, client_message_id: clientId },
    });
    const entry = view.pending.get(clientId);
    if (entry && view === current() && !state.socketOpen) {
      const node = ui.messages.querySelector(`[data-pending="${CSS.escape(clientId)}"] .message-meta`);
      if (node) node.textContent = 'Sent — waiting for the connection';
    }
  } catch (error) {
    const entry = view.pending.get(clientId);
    if (entry) {
      entry.error = error.message;
      renderPending(view, clientId);
    }
  }
}

async function toggleArchive() {
  const view = current();
  if (!view) return;
  const status = view.info.status === 'archived' ? 'active' : 'archived';
  ui.archiveButton.disabled = true;
  try {
    const info = await api(`/conversations/${encodeURIComponent(view.info.id)}`, {
      method: 'PATCH',
      body: { status },
    });
    view.info = { ...view.info, ...info };
    renderHeader(view);
    await refreshList();
    toast(status === 'archived' ? 'Conversation archived.' : 'Conversation unarchived.');
  } catch (error) {
    toast(`Could not change the conversation: ${error.message}`);
  } finally {
    ui.archiveButton.disabled = false;
    ui.archiveButton.focus();
  }
}

/** Asks for a person to take the conversation over from its bot. */
async function requestHandoff() {
  const view = current();
  if (!view) return;
  ui.handoffButton.disabled = true;
  try {
    const info = await api(`/conversations/${encodeURIComponent(view.info.id)}/handoff`, { method: 'POST' });
    // The `handoff` frame says the same, and may have come first, or even brought
    // the next change (an agent quick to claim): this answer only moves a view that
    // still shows the bot.
    if ((view.info.handoff ?? 'bot') === 'bot') applyHandoff(view, info.handoff, info.handoff_agent);
    ui.input.focus();
  } catch (error) {
    toast(`Could not ask for a person: ${error.message}`);
  } finally {
    ui.handoffButton.disabled = false;
  }
}

function askDelete() {
  if (!current()) return;
  ui.deleteDialog.returnValue = '';
  ui.deleteDialog.showModal();
}

async function deleteCurrent() {
  const view = current();
  if (!view) return;
  try {
    await api(`/conversations/${encodeURIComponent(view.info.id)}`, { method: 'DELETE' });
    state.convs.delete(view.info.id);
    closeConversation();
    await refreshList();
    toast('Conversation deleted.');
    ui.botSelect.focus();
  } catch (error) {
    toast(`Could not delete the conversation: ${error.message}`);
  }
}

function resetConversations() {
  // A new guest sees none of the old guest's conversations.
  state.convs.clear();
  if (state.currentId) closeConversation();
  if (embed) openEmbedded().catch((error) => toast(`Could not open the chat: ${error.message}`));
}

// ---------------------------------------------------------------------------
// The widget's frame: one conversation with one bot.
// ---------------------------------------------------------------------------

/** Lays the page out for the widget's frame, in the site's colour when it gave one. */
function setUpEmbedded() {
  ui.body.classList.add('embed');
  // The connection state stays visible (and spoken) above the messages.
  ui.conversation.prepend(ui.connection);
  if (embed.title) document.title = embed.title;
  const accent = embed.color && CSS.supports('color', embed.color) ? embed.color : null;
  if (accent) {
    const root = document.documentElement.style;
    root.setProperty('--accent', accent);
    root.setProperty('--accent-hover', accent);
    root.setProperty('--accent-text', isLight(accent) ? '#111827' : '#ffffff');
  }
}

/** Whether `color` is light enough to need dark text on it. */
function isLight(color) {
  const probe = el('span');
  probe.style.color = color;
  document.body.append(probe);
  const [r, g, b] = getComputedStyle(probe).color.match(/[\d.]+/g).map(Number);
  probe.remove();
  return 0.2126 * r + 0.7152 * g + 0.0722 * b > 160;
}

/** Opens the conversation this browser has with the widget's bot, or starts one. */
async function openEmbedded() {
  const botId = embed.bot;
  if (!botId || !state.bots.has(botId)) {
    ui.emptyState.querySelector('h2').textContent = 'This chat is not available';
    ui.emptyState.querySelector('p').textContent = botId
      ? `There is no bot "${botId}" here.`
      : 'The page that shows this chat names no bot (data-bot).';
    $('empty-start').hidden = true;
    return;
  }
  const key = `${EMBED_KEY_PREFIX}${botId}`;
  let id = localStorage.getItem(key);
  if (id) {
    try {
      const info = await api(`/conversations/${encodeURIComponent(id)}`);
      // An archived one (by retention, say) cannot take messages: start afresh.
      if (info.status !== 'active' || info.bot_id !== botId) id = null;
    } catch (error) {
      if (error.status !== 404) throw error;
      id = null;
    }
  }
  if (!id) {
    const started = await api('/conversations/start', { method: 'POST', body: { bot_id: botId } });
    id = started.conversation_id;
    localStorage.setItem(key, id);
  }
  await openConversation(id);
}

// ---------------------------------------------------------------------------
// Small behaviours: the drawer, the composer, typing.
// ---------------------------------------------------------------------------

function openDrawer() {
  ui.body.classList.add('drawer-open');
  ui.backdrop.hidden = false;
  ui.drawerToggle.setAttribute('aria-expanded', 'true');
  // While the drawer covers the page, keyboard focus stays in the drawer.
  ui.chat.inert = true;
  (ui.list.querySelector('[aria-current="true"]') ?? ui.botSelect).focus();
}

function closeDrawer() {
  if (!ui.body.classList.contains('drawer-open')) return;
  ui.body.classList.remove('drawer-open');
  ui.backdrop.hidden = true;
  ui.drawerToggle.setAttribute('aria-expanded', 'false');
  ui.chat.inert = false;
}

function autosize() {
  ui.input.style.height = 'auto';
  ui.input.style.height = `${Math.min(ui.input.scrollHeight + 2, 180)}px`;
}

function onComposerInput() {
  autosize();
  const view = current();
  const now = Date.now();
  if (view && now - state.lastTypingSent > TYPING_EVERY_MS) {
    state.lastTypingSent = now;
    send({ type: 'typing', conversation_id: view.info.id });
  }
}

function wire() {
  ui.newChat.addEventListener('submit', startConversation);
  ui.botSelect.addEventListener('change', showBotDescription);
  for (const tab of ui.tabs) {
    tab.addEventListener('click', () => setListStatus(tab.dataset.status).catch((e) => toast(e.message)));
  }
  $('empty-start').addEventListener('click', () => {
    // On a phone the bot picker sits in the folded drawer.
    if (getComputedStyle(ui.drawerToggle).display !== 'none') openDrawer();
    ui.botSelect.focus();
  });
  ui.archiveButton.addEventListener('click', toggleArchive);
  ui.deleteButton.addEventListener('click', askDelete);
  ui.handoffButton.addEventListener('click', requestHandoff);
  ui.deleteDialog.addEventListener('close', () => {
    if (ui.deleteDialog.returnValue === 'delete') deleteCurrent();
    else ui.deleteButton.focus();
  });
  ui.loadOlder.addEventListener('click', loadOlder);
  ui.scroller.addEventListener('scroll', () => {
    if (ui.scroller.scrollTop < 40) loadOlder();
  });
  ui.composer.addEventListener('submit', sendMessage);
  ui.input.addEventListener('input', onComposerInput);
  ui.input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      ui.composer.requestSubmit();
    }
  });
  ui.drawerToggle.addEventListener('click', () => {
    if (ui.body.classList.contains('drawer-open')) closeDrawer();
    else openDrawer();
  });
  ui.backdrop.addEventListener('click', closeDrawer);
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && ui.body.classList.contains('drawer-open')) {
      closeDrawer();
      ui.drawerToggle.focus();
    }
  });
  window.addEventListener('hashchange', () => {
    const id = location.hash.slice(1);
    if (id && id !== state.currentId) openConversation(id);
  });
  window.addEventListener('online', () => {
    state.backoffMs = BACKOFF_FIRST_MS;
    if (!state.socket) connect();
  });
}

// A handle for the end-to-end test (and for curious developers in the console).
window.confabDebug = {
  /** Closes the socket as a network drop would; `{hold: true}` stays offline until `reconnect()`. */
  dropSocket({ hold = false } = {}) {
    state.holdReconnect = hold;
    if (hold) {
      clearTimeout(state.reconnectTimer);
      state.reconnectTimer = null;
    }
    dropSocket();
  },
  reconnect() {
    state.holdReconnect = false;
    state.backoffMs = BACKOFF_FIRST_MS;
    connect();
  },
  get connected() {
    return state.socketOpen;
  },
  get connections() {
    return state.connections;
  },
  get currentConversation() {
    return state.currentId;
  },
  maxSeq(id = state.currentId) {
    return state.convs.get(id)?.maxSeq ?? 0;
  },
};

async function main() {
  wire();
  if (embed) setUpEmbedded();
  try {
    await ensureToken().then((auth) => {
      state.auth = auth;
    });
    await Promise.all([loadBots(), refreshList()]);
  } catch (error) {
    toast(`confab is unreachable: ${error.message}`);
  }
  connect();
  if (embed) {
    try {
      await openEmbedded();
    } catch (error) {
      toast(`Could not open the chat: ${error.message}`);
    }
  } else {
    const wanted = location.hash.slice(1) || state.conversations[0]?.id;
    if (wanted) await openConversation(wanted);
  }
  document.documentElement.dataset.ready = 'true';
}

main();
