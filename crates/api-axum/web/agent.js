// confab's agents' page at /agent: the people who take conversations over from bots
// when a user asks for a person. A client of the public API like the chat page:
//
// - sign-in is an agent's token pasted in (`confab token --user NAME --agent`), kept
//   in sessionStorage, so it lives as long as the tab;
// - the queue (GET /agent/queue) and the agent's own conversations
//   (GET /agent/conversations) are polled every POLL_MS: plain REST, nothing to
//   resume, and a queue that is at most two seconds old is fresh enough to claim from;
// - a claimed conversation is followed over /ws like the chat page follows its own:
//   `subscribe` with `after_seq`, live messages and typing from the user, `message`
//   and `typing` frames from the agent, `handoff` frames when it leaves their hands.
//
// Plain ES module, no framework. The user's text goes through textContent; the
// Markdown of bots, agents and confab through markdown.js, as on the chat page.

import { renderMarkdown } from './markdown.js';

const TOKEN_KEY = 'confab.agent.token';
const POLL_MS = 2000;
const PAGE_SIZE = 50;
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 15000;
const TYPING_EVERY_MS = 3000;
// The user's `typing` frame says they type, never that they stopped: the indicator
// fades this long after the last one.
const USER_TYPING_MS = 6000;
// A ping every HEARTBEAT_MS must get some frame back within SILENCE_MS, or the socket
// is taken for dead (a cut network leaves it "open" in the browser).
const HEARTBEAT_MS = 25000;
const SILENCE_MS = 10000;

const $ = (id) => document.getElementById(id);

const ui = {
  connection: $('connection'),
  connectionText: $('connection-text'),
  who: $('agent-who'),
  name: $('agent-name'),
  signOut: $('sign-out'),
  signIn: $('sign-in'),
  signInForm: $('sign-in-form'),
  tokenInput: $('token-input'),
  signInError: $('sign-in-error'),
  signInButton: $('sign-in-button'),
  desk: $('desk'),
  queue: $('queue'),
  queueCount: $('queue-count'),
  queueNote: $('queue-note'),
  queueEmpty: $('queue-empty'),
  held: $('held'),
  heldCount: $('held-count'),
  heldEmpty: $('held-empty'),
  main: $('main'),
  emptyState: $('empty-state'),
  conversation: $('conversation'),
  title: $('conversation-title'),
  meta: $('conversation-meta'),
  releaseButton: $('release-button'),
  scroller: $('log-scroller'),
  loadOlder: $('load-older'),
  messages: $('messages'),
  typing: $('typing'),
  typingText: $('typing-text'),
  composer: $('composer'),
  input: $('composer-input'),
  closedNote: $('closed-note'),
  toast: $('toast'),
};

const state = {
  token: null,
  me: null, // the agent's user id
  pollTimer: null,
  pollSeq: 0, // each poll's number: an answer older than the one shown is dropped
  shownPoll: 0,
  socket: null,
  socketOpen: false,
  connections: 0,
  reconnectTimer: null,
  backoffMs: BACKOFF_FIRST_MS,
  failedOpens: 0,
  open: null, // the conversation in the chat view (see openConversation)
  lastTypingSent: 0,
  userTypingTimer: null,
};

// ---------------------------------------------------------------------------
// REST with the agent's token
// ---------------------------------------------------------------------------

class HttpError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.code = problem?.code;
  }
}

async function problemOf(response) {
  try {
    return await response.json();
  } catch {
    return null;
  }
}

async function api(path, { method = 'GET', body } = {}) {
  const token = state.token;
  const headers = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) {
    const error = new HttpError(response.status, await problemOf(response));
    // Only the token can make the server refuse who we are; a new one is needed.
    if (response.status === 401 && state.token === token) {
      signOut('Your token expired or is no longer valid. Paste a new one.');
    }
    throw error;
  }
  return response.status === 204 ? null : response.json();
}

// ---------------------------------------------------------------------------
// Signing in and out
// ---------------------------------------------------------------------------

/** The `sub` of a JWT, for showing who is signed in; the server checks the token. */
function subjectOf(token) {
  try {
    const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(payload)).sub ?? null;
  } catch {
    return null;
  }
}

/** Checks `token` against the queue, which only agents may read, and opens the desk. */
async function signIn(token) {
  let response;
  try {
    response = await fetch('/agent/queue', { headers: { Authorization: `Bearer ${token}` } });
  } catch (error) {
    throw new Error(`confab is unreachable: ${error.message}`);
  }
  if (response.status === 401) {
    throw new Error('This token is not valid: it expired, is incomplete, or was minted for another server.');
  }
  if (response.status === 403) {
    throw new Error("This token is not an agent's. Mint one with: confab token --user NAME --agent");
  }
  if (!response.ok) throw new HttpError(response.status, await problemOf(response));
  const queue = await response.json();
  state.token = token;
  state.me = subjectOf(token);
  sessionStorage.setItem(TOKEN_KEY, token);
  ui.name.textContent = state.me ?? 'an agent';
  ui.who.hidden = false;
  ui.signOut.hidden = false;
  ui.signIn.hidden = true;
  ui.desk.hidden = false;
  ui.tokenInput.value = '';
  renderQueue(queue.conversations);
  connect();
  poll();
}

async function onSignInSubmit(event) {
  event.preventDefault();
  const token = ui.tokenInput.value.trim().replace(/^Bearer\s+/i, '');
  if (!token) return;
  ui.signInButton.disabled = true;
  ui.signInError.textContent = '';
  try {
    await signIn(token);
    ui.main.focus();
  } catch (error) {
    ui.signInError.textContent = error.message;
    ui.tokenInput.focus();
  } finally {
    ui.signInButton.disabled = false;
  }
}

function signOut(reason = '') {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  state.me = null;
  clearTimeout(state.pollTimer);
  clearTimeout(state.reconnectTimer);
  state.reconnectTimer = null;
  const socket = state.socket;
  state.socket = null;
  state.socketOpen = false;
  socket?.close(1000, 'signed out');
  closeConversation();
  ui.queue.replaceChildren();
  ui.held.replaceChildren();
  ui.who.hidden = true;
  ui.signOut.hidden = true;
  ui.desk.hidden = true;
  ui.signIn.hidden = false;
  ui.signInError.textContent = reason;
  setConnection('offline', 'Signed out');
  ui.tokenInput.focus();
}

// ---------------------------------------------------------------------------
// The queue and the agent's conversations, polled
// ---------------------------------------------------------------------------

async function poll() {
  clearTimeout(state.pollTimer);
  if (!state.token) return;
  const seq = (state.pollSeq += 1);
  try {
    const [queue, held] = await Promise.all([api('/agent/queue'), api('/agent/conversations')]);
    // A poll started earlier but answered later must not undo a newer one.
    if (seq > state.shownPoll && state.token) {
      state.shownPoll = seq;
      renderQueue(queue.conversations);
      renderHeld(held.conversations);
      ui.queueNote.textContent = 'Updates every 2 seconds.';
    }
  } catch (error) {
    if (state.token) ui.queueNote.textContent = `Could not update (${error.message}); trying again.`;
  } finally {
    if (state.token && seq === state.pollSeq) state.pollTimer = setTimeout(poll, POLL_MS);
  }
}

/**
 * Makes `list` show one item per entry, in order, reusing the items it has: the
 * lists are redrawn every poll, and a rebuilt button would lose the keyboard focus.
 */
function syncList(list, entries, create, update) {
  const existing = new Map([...list.children].map((node) => [node.dataset.id, node]));
  entries.forEach((entry, index) => {
    const id = entry.conversation.id;
    let node = existing.get(id);
    if (node) existing.delete(id);
    else node = create(entry);
    update(node, entry);
    const at = list.children[index];
    if (at !== node) list.insertBefore(node, at ?? null);
  });
  for (const node of existing.values()) node.remove();
}

function renderQueue(entries) {
  ui.queueCount.textContent = String(entries.length);
  ui.queueEmpty.hidden = entries.length > 0;
  syncList(ui.queue, entries, queueItem, updateQueueItem);
}

function renderHeld(entries) {
  ui.heldCount.textContent = String(entries.length);
  ui.heldEmpty.hidden = entries.length > 0;
  syncList(ui.held, entries, heldItem, updateHeldItem);
}

function queueItem(entry) {
  const id = entry.conversation.id;
  const item = el('li', 'queue-item');
  item.dataset.id = id;
  const head = el('div', 'queue-head');
  const title = el('h3', 'queue-title');
  title.id = `queue-title-${id}`;
  head.append(title, el('time', 'queue-wait'));
  const recent = el('ol', 'queue-recent');
  recent.setAttribute('aria-label', 'Latest messages');
  const claim = el('button', 'primary claim-button', 'Claim');
  claim.type = 'button';
  claim.addEventListener('click', () => claimConversation(id, claim));
  item.append(head, el('p', 'queue-user'), recent, claim);
  return item;
}

function updateQueueItem(item, entry) {
  const info = entry.conversation;
  const bot = botName(info);
  const waited = duration(info.handoff_since ?? info.last_activity);
  setText(item.querySelector('.queue-title'), conversationTitle(info));
  const wait = item.querySelector('.queue-wait');
  setText(wait, `waiting ${waited}`);
  wait.dateTime = info.handoff_since ?? '';
  setText(item.querySelector('.queue-user'), `${bot} · ${userOf(entry) ?? 'a user'}`);
  item.querySelector('.claim-button').setAttribute('aria-label', `Claim ${conversationTitle(info)}, waiting ${waited}`);
  // Redrawn only when a message came, not every poll.
  const recent = item.querySelector('.queue-recent');
  const shown = entry.recent_messages.map((m) => m.id).join(',');
  if (recent.dataset.shown !== shown) {
    recent.dataset.shown = shown;
    recent.replaceChildren(
      ...entry.recent_messages.map((message) => {
        const line = el('li', `recent from-${message.sender}`);
        line.append(el('span', 'recent-who', `${shortLabel(message, info)}: `), message.content || '(attachment)');
        return line;
      }),
    );
  }
}

function heldItem(entry) {
  const id = entry.conversation.id;
  const item = el('li');
  item.dataset.id = id;
  const button = el('button', 'conversation-item held-item');
  button.type = 'button';
  button.append(el('span', 'item-title'), el('span', 'item-time'), el('span', 'item-preview'));
  button.addEventListener('click', () => openConversation(id));
  item.append(button);
  return item;
}

function updateHeldItem(item, entry) {
  const info = entry.conversation;
  const button = item.querySelector('button');
  setText(button.querySelector('.item-title'), conversationTitle(info));
  setText(button.querySelector('.item-time'), duration(info.handoff_since ?? info.last_activity));
  const last = entry.recent_messages.at(-1);
  setText(button.querySelector('.item-preview'), last ? `${shortLabel(last, info)}: ${last.content}` : '');
  if (state.open?.info.id === info.id) button.setAttribute('aria-current', 'true');
  else button.removeAttribute('aria-current');
}

/** Takes a waiting conversation over, then opens it. */
async function claimConversation(id, button) {
  button.disabled = true;
  try {
    const info = await api(`/agent/conversations/${encodeURIComponent(id)}/claim`, { method: 'POST' });
    await openConversation(id, info);
  } catch (error) {
    if (error.code === 'handoff_taken') {
      toast('Another agent claimed this conversation first. It is theirs now.');
    } else if (error.code === 'handoff_not_waiting') {
      toast('This conversation is no longer waiting: it went back to its bot.');
    } else if (error.status === 404) {
      toast('This conversation is gone: its user deleted it.');
    } else if (error.status !== 401) {
      toast(`Could not claim the conversation: ${error.message}`);
    }
  } finally {
    button.disabled = false;
    poll();
  }
}

// ---------------------------------------------------------------------------
// The socket: one per signed-in page, resumed with back-off after every drop.
// ---------------------------------------------------------------------------

function setConnection(kind, text) {
  ui.connection.dataset.state = kind;
  ui.connectionText.textContent = text;
}

function connect() {
  clearTimeout(state.reconnectTimer);
  state.reconnectTimer = null;
  if (state.socket || !state.token) return;
  if (state.failedOpens >= 2) {
    // A refused upgrade looks like any other drop; a REST call tells whether the
    // token is the reason (and signs out if so).
    api('/agent/conversations?limit=1').catch(() => {});
  }
  setConnection('connecting', 'Connecting…');
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const socket = new WebSocket(`${scheme}//${location.host}/ws?token=${encodeURIComponent(state.token)}`);
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
    const view = state.open;
    if (view?.loaded) {
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
    scheduleReconnect();
  });
}

function scheduleReconnect() {
  if (state.reconnectTimer || !state.token) return;
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
  socket?.close(4000, 'dropped by the page');
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

/** Sends again what the socket took but never acknowledged; the server stores it once. */
function resendPending(view) {
  if (view.closed) return;
  for (const [clientId, entry] of view.pending) {
    if (entry.error || entry.viaRest) continue;
    send({ type: 'message', conversation_id: view.info.id, content: entry.content, client_message_id: clientId, ref: clientId });
  }
}

function handleFrame(frame) {
  const view = state.open;
  const here = view && frame.conversation_id === view.info.id;
  switch (frame.type) {
    case 'status':
      if (frame.user_id) state.me = frame.user_id;
      else if (here) onStatus(view, frame);
      break;
    case 'message':
      if (here) onMessage(view, frame);
      break;
    case 'typing':
      if (here && frame.sender === 'user') setUserTyping(view, true);
      break;
    case 'handoff':
      if (here) onHandoff(view, frame.handoff, frame.agent_id ?? null);
      break;
    case 'error':
      onError(frame);
      break;
    default:
      // subscribed, pong, delta (a bot does not answer while a person does) and
      // whatever comes later: nothing to do.
      break;
  }
}

function onMessage(view, message) {
  if (!addMessage(view, message)) return;
  renderMessage(view, message);
  if (message.sender === 'user') setUserTyping(view, false);
  // A notice replayed after a reconnect carries the change its frame announced.
  const handoff = handoffOfNotice(message);
  if (handoff) onHandoff(view, handoff, message.metadata.agent_id ?? null);
}

/** The conversation's handoff moved: it stays here only while this agent holds it. */
function onHandoff(view, handoff, agentId) {
  view.info.handoff = handoff;
  view.info.handoff_agent = agentId;
  if (handoff === 'agent' && agentId === state.me) {
    // Theirs again (released, asked for, claimed back while this view stayed open).
    if (view.closed && view.info.status !== 'archived') {
      view.closed = null;
      renderHeader(view);
    }
    return;
  }
  let why;
  if (handoff === 'bot') why = `This conversation is back with ${botName(view.info)}.`;
  else if (handoff === 'waiting') why = 'An administrator moved this conversation back to the queue.';
  else why = `${agentId} holds this conversation now.`;
  closeView(view, why);
  poll();
}

function onStatus(view, frame) {
  if (frame.status === 'deleted') {
    closeConversation();
    toast('The user deleted the conversation.');
    poll();
  } else if (frame.status === 'archived') {
    view.info.status = 'archived';
    closeView(view, 'The conversation was archived.');
    poll();
  }
}

function onError(frame) {
  const view = state.open;
  if (view && frame.ref && view.pending.has(frame.ref)) {
    view.pending.get(frame.ref).error = frame.message;
    renderPending(view, frame.ref);
    return;
  }
  if (frame.code !== 'not_found') toast(frame.message || 'The server refused a request.');
}

// ---------------------------------------------------------------------------
// The chat view of a held conversation
// ---------------------------------------------------------------------------

/** Opens a conversation: its resource, its latest messages, then live over /ws. */
async function openConversation(id, known = null) {
  const previous = state.open;
  if (previous?.info.id === id && previous.loaded && !previous.closed) {
    ui.input.focus();
    return;
  }
  if (previous) send({ type: 'unsubscribe', conversation_id: previous.info.id });
  const view = {
    info: known ?? { id, bot_id: '', title: null },
    messages: new Map(), // id -> message
    pending: new Map(), // client_message_id -> {content, error, viaRest}
    maxSeq: 0, // where a resume starts
    minSeq: null, // where `before` paging continues
    hasOlder: false,
    loadingOlder: false,
    loaded: false,
    closed: null, // why the agent may no longer write, once they may not
  };
  state.open = view;
  setUserTyping(view, false);
  ui.emptyState.hidden = true;
  ui.conversation.hidden = false;
  ui.messages.replaceChildren();
  renderHeader(view);
  markOpenInList();
  try {
    const path = `/conversations/${encodeURIComponent(id)}`;
    const [info, page] = await Promise.all([api(path), api(`${path}/history?limit=${PAGE_SIZE}`)]);
    if (state.open !== view) return;
    view.info = info;
    for (const message of page.messages) addMessage(view, message);
    view.hasOlder = page.has_more;
    view.loaded = true;
    renderMessages(view);
    subscribe(view);
    if (info.handoff !== 'agent' || info.handoff_agent !== state.me) {
      closeView(view, 'You do not hold this conversation (any more).');
    } else {
      ui.input.focus();
    }
  } catch (error) {
    if (state.open !== view) return;
    closeConversation();
    if (error.status !== 401) toast(`Could not open the conversation: ${error.message}`);
  }
}

function closeConversation() {
  const view = state.open;
  if (view) send({ type: 'unsubscribe', conversation_id: view.info.id });
  state.open = null;
  clearTimeout(state.userTypingTimer);
  ui.conversation.hidden = true;
  ui.emptyState.hidden = false;
  ui.messages.replaceChildren();
  markOpenInList();
}

/** The conversation stays shown, read-only, with why the agent may not write. */
function closeView(view, why) {
  view.closed = why;
  setUserTyping(view, false);
  if (state.open === view) renderHeader(view);
}

function addMessage(view, message) {
  if (view.messages.has(message.id)) return false;
  view.messages.set(message.id, message);
  view.maxSeq = Math.max(view.maxSeq, message.seq);
  view.minSeq = view.minSeq === null ? message.seq : Math.min(view.minSeq, message.seq);
  if (message.client_message_id) view.pending.delete(message.client_message_id);
  return true;
}

function renderHeader(view) {
  const info = view.info;
  ui.title.textContent = conversationTitle(info);
  const user = userOfView(view);
  const since = info.handoff_since ? ` · yours since ${shortTime(info.handoff_since)}` : '';
  ui.meta.textContent = `${user ?? 'A user'} with ${botName(info)}${view.closed ? '' : since}`;
  ui.releaseButton.hidden = Boolean(view.closed);
  ui.composer.hidden = Boolean(view.closed);
  ui.closedNote.hidden = !view.closed;
  ui.closedNote.textContent = view.closed ?? '';
  ui.loadOlder.hidden = !view.hasOlder;
}

function renderMessages(view) {
  ui.messages.setAttribute('aria-busy', 'true');
  const sorted = [...view.messages.values()].sort((a, b) => a.seq - b.seq);
  ui.messages.replaceChildren(...sorted.map((m) => messageNode(view, m)));
  for (const clientId of view.pending.keys()) renderPending(view, clientId);
  ui.messages.removeAttribute('aria-busy');
  renderHeader(view);
  scrollToBottom();
}

function renderMessage(view, message) {
  if (state.open !== view) return;
  const stick = nearBottom() || isMine(message);
  if (message.client_message_id) {
    ui.messages.querySelector(`[data-pending="${CSS.escape(message.client_message_id)}"]`)?.remove();
  }
  placeBySeq(messageNode(view, message), message.seq);
  if (stick) scrollToBottom();
}

function isMine(message) {
  return message.sender === 'agent' && message.sender_id === state.me;
}

function messageNode(view, message) {
  const item = el('li', `message from-${message.sender}`);
  item.dataset.id = message.id;
  item.dataset.seq = String(message.seq);
  const time = el('time', null, shortTime(message.timestamp));
  time.dateTime = message.timestamp;
  if (handoffOfNotice(message)) {
    // "alice joined": a line across the log, as on the chat page.
    item.classList.add('notice');
    const line = el('p', 'notice-line');
    line.append(el('span', 'bubble', message.content), ' · ', time);
    item.append(line);
    return item;
  }
  if (isMine(message)) item.classList.add('mine');
  const label = senderLabel(view, message);
  let spoken = '';
  if (message.content) {
    const bubble = el('div', 'bubble');
    if (message.sender === 'user') {
      bubble.textContent = message.content;
    } else {
      bubble.classList.add('markdown');
      renderMarkdown(bubble, message.content);
    }
    item.append(bubble);
    spoken = bubble.textContent;
  }
  const links = attachmentLinks(message.attachments ?? []);
  if (links) item.append(links);
  item.setAttribute('aria-label', `${label}: ${spoken}`);
  const meta = el('p', 'message-meta');
  meta.append(`${label} · `, time);
  item.append(meta);
  return item;
}

/** A message's attachments as plain links; only http and https addresses are shown. */
function attachmentLinks(attachments) {
  const shown = attachments.filter((a) => safeUrl(a.url));
  if (shown.length === 0) return null;
  const list = el('ul', 'attachments');
  list.setAttribute('aria-label', 'Attachments');
  for (const attachment of shown) {
    const link = el('a', 'attachment-file', attachment.name || attachment.url);
    link.href = safeUrl(attachment.url);
    link.target = '_blank';
    link.rel = 'noopener noreferrer';
    const item = el('li');
    item.append(link);
    list.append(item);
  }
  return list;
}

function renderPending(view, clientId) {
  if (state.open !== view) return;
  const entry = view.pending.get(clientId);
  let node = ui.messages.querySelector(`[data-pending="${CSS.escape(clientId)}"]`);
  if (!entry) {
    node?.remove();
    return;
  }
  if (!node) {
    node = el('li', 'message from-agent mine pending');
    node.dataset.pending = clientId;
    node.append(el('div', 'bubble', entry.content), el('p', 'message-meta', 'Sending…'));
    ui.messages.append(node);
    scrollToBottom();
  }
  if (entry.error) {
    node.classList.add('failed');
    const meta = node.querySelector('.message-meta');
    meta.textContent = `Not sent: ${entry.error}`;
    meta.classList.add('message-error');
  }
}

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

function setUserTyping(view, active) {
  clearTimeout(state.userTypingTimer);
  state.userTypingTimer = active ? setTimeout(() => setUserTyping(view, false), USER_TYPING_MS) : null;
  if (state.open !== view) return;
  ui.typing.hidden = !active;
  ui.typingText.textContent = active ? `${userOfView(view) ?? 'The user'} is typing…` : '';
}

function markOpenInList() {
  for (const button of ui.held.querySelectorAll('button')) {
    if (button.parentElement.dataset.id === state.open?.info.id) button.setAttribute('aria-current', 'true');
    else button.removeAttribute('aria-current');
  }
}

async function loadOlder() {
  const view = state.open;
  if (!view || !view.hasOlder || view.loadingOlder || view.minSeq === null) return;
  view.loadingOlder = true;
  ui.loadOlder.disabled = true;
  try {
    const page = await api(
      `/conversations/${encodeURIComponent(view.info.id)}/history?limit=${PAGE_SIZE}&before=${view.minSeq}`,
    );
    if (state.open !== view) return;
    const fromBottom = ui.scroller.scrollHeight - ui.scroller.scrollTop;
    for (const message of page.messages) {
      if (addMessage(view, message)) placeBySeq(messageNode(view, message), message.seq);
    }
    view.hasOlder = page.has_more;
    // Keep the message the reader was looking at where it was.
    ui.scroller.scrollTop = ui.scroller.scrollHeight - fromBottom;
  } catch (error) {
    toast(`Could not load older messages: ${error.message}`);
  } finally {
    view.loadingOlder = false;
    ui.loadOlder.disabled = false;
    ui.loadOlder.hidden = !view.hasOlder;
  }
}

// ---------------------------------------------------------------------------
// Answering and releasing
// ---------------------------------------------------------------------------

async function sendAnswer(event) {
  event.preventDefault();
  const view = state.open;
  const content = ui.input.value.trim();
  if (!view || view.closed || !content) return;
  ui.input.value = '';
  autosize();
  const clientId = crypto.randomUUID();
  const entry = { content, error: null, viaRest: false };
  view.pending.set(clientId, entry);
  renderPending(view, clientId);
  const frame = { type: 'message', conversation_id: view.info.id, content, client_message_id: clientId, ref: clientId };
  if (send(frame)) return;
  // Offline: REST stores it now, and the message itself comes with the resume.
  entry.viaRest = true;
  try {
    await api(`/conversations/${encodeURIComponent(view.info.id)}/messages`, {
      method: 'POST',
      body: { content, client_message_id: clientId },
    });
  } catch (error) {
    entry.error = error.message;
    renderPending(view, clientId);
  }
}

/** Gives the open conversation back to its bot, which answers the user's next message. */
async function releaseConversation() {
  const view = state.open;
  if (!view || view.closed) return;
  ui.releaseButton.disabled = true;
  try {
    await api(`/agent/conversations/${encodeURIComponent(view.info.id)}/release`, { method: 'POST' });
    if (state.open === view) closeConversation();
    toast(`Released: ${botName(view.info)} answers the user again.`);
    poll();
  } catch (error) {
    if (error.status !== 401) toast(`Could not release the conversation: ${error.message}`);
  } finally {
    ui.releaseButton.disabled = false;
  }
}

function autosize() {
  ui.input.style.height = 'auto';
  ui.input.style.height = `${Math.min(ui.input.scrollHeight + 2, 180)}px`;
}

function onComposerInput() {
  autosize();
  const view = state.open;
  const now = Date.now();
  if (view && !view.closed && now - state.lastTypingSent > TYPING_EVERY_MS) {
    state.lastTypingSent = now;
    send({ type: 'typing', conversation_id: view.info.id });
  }
}

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Sets a node's text only when it changes, so that polling does not re-announce it. */
function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function botName(info) {
  return info.bot_name || info.bot_id || 'the bot';
}

function conversationTitle(info) {
  return info.title || `Chat with ${botName(info)}`;
}

/** The user of a conversation, as the sender id of their messages. */
function userOf(entry) {
  return entry.recent_messages.find((m) => m.sender === 'user')?.sender_id ?? null;
}

function userOfView(view) {
  for (const message of view.messages.values()) {
    if (message.sender === 'user') return message.sender_id;
  }
  return null;
}

function senderLabel(view, message) {
  if (message.sender === 'user') return 'User';
  if (message.sender === 'system') return 'confab';
  if (message.sender === 'bot') return `${botName(view.info)} (bot)`;
  return isMine(message) ? 'You' : `${message.sender_id} (agent)`;
}

function shortLabel(message, info) {
  if (message.sender === 'user') return 'User';
  if (message.sender === 'bot') return botName(info);
  if (message.sender === 'agent') return message.sender_id;
  return 'confab';
}

/** The handoff state a `system` notice records, or null for any other message. */
function handoffOfNotice(message) {
  const handoff = message.sender === 'system' ? message.metadata?.handoff : null;
  return ['bot', 'waiting', 'agent'].includes(handoff) ? handoff : null;
}

function safeUrl(url) {
  try {
    const parsed = new URL(url, location.href);
    return ['http:', 'https:'].includes(parsed.protocol) ? parsed.href : null;
  } catch {
    return null;
  }
}

/** How long since `iso`, in words: "45 s", "3 min", "1 h 5 min". */
function duration(iso) {
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (!Number.isFinite(seconds)) return '';
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });

function shortTime(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? '' : timeFormat.format(date);
}

let toastTimer = null;
function toast(text) {
  ui.toast.textContent = text;
  ui.toast.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    ui.toast.hidden = true;
  }, 6000);
}

function wire() {
  ui.signInForm.addEventListener('submit', onSignInSubmit);
  ui.signOut.addEventListener('click', () => signOut());
  ui.releaseButton.addEventListener('click', releaseConversation);
  ui.loadOlder.addEventListener('click', loadOlder);
  ui.composer.addEventListener('submit', sendAnswer);
  ui.input.addEventListener('input', onComposerInput);
  ui.input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      ui.composer.requestSubmit();
    }
  });
  window.addEventListener('online', () => {
    state.backoffMs = BACKOFF_FIRST_MS;
    if (!state.socket) connect();
  });
}

// A handle for the end-to-end test (and for curious developers in the console).
window.confabAgentDebug = {
  get connected() {
    return state.socketOpen;
  },
  get me() {
    return state.me;
  },
  get openConversation() {
    return state.open?.loaded ? state.open.info.id : null;
  },
  dropSocket() {
    dropSocket();
  },
};

async function main() {
  wire();
  const stored = sessionStorage.getItem(TOKEN_KEY);
  if (stored) {
    try {
      await signIn(stored);
    } catch (error) {
      sessionStorage.removeItem(TOKEN_KEY);
      ui.signInError.textContent = error.message;
    }
  }
  if (!state.token) ui.tokenInput.focus();
  document.documentElement.dataset.ready = 'true';
}

main();
