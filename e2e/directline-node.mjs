// Microsoft's botframework-directlinejs, unmodified from npm, against confab's Direct
// Line 3.0 adapter in node: the library a mobile or server-side client would use, in
// its WebSocket mode and in its polling mode. `cargo xtask e2e` starts a server with a
// Direct Line secret for the echo bot and runs this with plain node:
//
//   CONFAB_E2E_URL=http://127.0.0.1:PORT DL_SECRET_ECHO=… node e2e/directline-node.mjs
//
// Each step names what the client does and what it must see; the first failure stops
// the run with that step's name. Every wait is bounded, and nothing but 127.0.0.1 is
// ever called.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import directLineJs from 'botframework-directlinejs';
import { WebSocket } from 'ws';
import XMLHttpRequest from 'xhr2';
import { run, step } from './harness.mjs';

// directlinejs is written for browsers: it calls the global WebSocket and, through
// rxjs's ajax, the global XMLHttpRequest. Node 20 has neither.
globalThis.WebSocket = WebSocket;
globalThis.XMLHttpRequest = XMLHttpRequest;

const { ConnectionStatus, DirectLine } = directLineJs;

const BASE = process.env.CONFAB_E2E_URL ?? 'http://127.0.0.1:8080';
const DOMAIN = `${BASE}/v3/directline`;
const SECRET = process.env.DL_SECRET_ECHO;
const STEP_TIMEOUT_MS = 20_000;
// A dropped socket is reopened after directlinejs's retry delay: 3 s here (see
// `random` below), up to 15 s in a browser.
const RECONNECT_TIMEOUT_MS = 30_000;
const RUN_TIMEOUT_MS = 150_000;

assert.ok(SECRET, 'DL_SECRET_ECHO must hold the echo bot\'s Direct Line secret');
assert.equal(new URL(BASE).hostname, '127.0.0.1', 'the server under test must be on 127.0.0.1');

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/** Resolves when `predicate()` holds, checking every 50 ms; fails after `limit` ms saying `what`. */
async function until(what, predicate, limit = STEP_TIMEOUT_MS) {
  const deadline = Date.now() + limit;
  for (;;) {
    const value = predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${limit} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A Direct Line REST call straight to the server, the way a site's backend makes it. */
async function rest(method, route, { auth, body } = {}) {
  const response = await fetch(`${DOMAIN}${route}`, {
    method,
    headers: { Authorization: `Bearer ${auth}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

/** `POST /tokens/generate` with the secret: a token for a new conversation with the echo bot. */
async function generateToken(userId) {
  const { status, body } = await rest('POST', '/tokens/generate', { auth: SECRET, body: { user: { id: userId } } });
  assert.equal(status, 200, `POST /tokens/generate answered ${status}: ${JSON.stringify(body)}`);
  assert.equal(typeof body.conversationId, 'string', `no conversationId in ${JSON.stringify(body)}`);
  assert.equal(typeof body.token, 'string', `no token in ${JSON.stringify(body)}`);
  assert.ok(body.expires_in > 0, `expires_in is ${body.expires_in}`);
  return body;
}

/** Every message of the conversation as the server lists it, oldest first. */
async function serverTranscript(conversationId, token) {
  const { status, body } = await rest('GET', `/conversations/${conversationId}/activities?watermark=`, { auth: token });
  assert.equal(status, 200, `GET /activities answered ${status}: ${JSON.stringify(body)}`);
  return body.activities;
}

/** An Observable's first value, as a promise that fails after `limit` ms. */
function first(observable, what, limit = STEP_TIMEOUT_MS) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      subscription.unsubscribe();
      reject(new Error(`timed out after ${limit} ms waiting for ${what}`));
    }, limit);
    const subscription = observable.subscribe(
      (value) => {
        clearTimeout(timer);
        resolve(value);
        // Unsubscribing from inside `next` must wait until `subscribe` has returned.
        setImmediate(() => subscription.unsubscribe());
      },
      (error) => {
        clearTimeout(timer);
        reject(new Error(`${what} failed: ${error?.status ?? ''} ${error?.message ?? error}`));
      },
    );
  });
}

/** The WebSockets a client opened, so that a test can drop the live one. */
function socketRecorder() {
  const sockets = [];
  class RecordedWebSocket extends WebSocket {
    constructor(url, protocols) {
      super(url, protocols);
      sockets.push(this);
    }
  }
  return { sockets, RecordedWebSocket, open: () => sockets.filter((s) => s.readyState === WebSocket.OPEN) };
}

/**
 * A directlinejs client and what it has seen: every activity in arrival order and
 * every connection status.
 */
function connect(options) {
  const recorder = socketRecorder();
  const directLine = new DirectLine({
    domain: DOMAIN,
    // Services directlinejs takes from its options: the WebSocket class, recorded, and
    // the random number that picks the retry delay (3 s + 12 s × random), 0 for 3 s.
    WebSocket: recorder.RecordedWebSocket,
    random: () => 0,
    ...options,
  });
  const client = { directLine, activities: [], statuses: [], errors: [], recorder };
  client.statusSubscription = directLine.connectionStatus$.subscribe((status) => client.statuses.push(status));
  client.activitySubscription = directLine.activity$.subscribe(
    (activity) => client.activities.push(activity),
    (error) => client.errors.push(error),
  );
  client.messages = () => client.activities.filter((a) => a.type === 'message');
  client.close = () => {
    client.activitySubscription.unsubscribe();
    directLine.end();
    client.statusSubscription.unsubscribe();
  };
  return client;
}

async function online(client) {
  await until('connectionStatus Online', () => client.directLine.connectionStatus$.getValue() === ConnectionStatus.Online);
}

/** Posts a text message as `userId` through the client; resolves to the id the server gave it. */
async function post(client, userId, text) {
  const id = await first(
    client.directLine.postActivity({ type: 'message', from: { id: userId, role: 'user' }, text }),
    `postActivity("${text}")`,
  );
  assert.equal(typeof id, 'string', `postActivity("${text}") resolved to ${JSON.stringify(id)}`);
  assert.notEqual(id, 'retry', `postActivity("${text}") was refused and left to retry`);
  return id;
}

/** Waits until the client has the echo bot's reply to the message `id` ("text"). */
async function echoOf(client, id, text, limit = STEP_TIMEOUT_MS) {
  return until(
    `the echo of "${text}" (replyToId ${id})`,
    () => client.messages().find((a) => a.replyToId === id && a.from?.role === 'bot'),
    limit,
  );
}

/** Fails unless each activity arrived once and the client saw exactly `expected`, in order. */
function assertOnceAndInOrder(received, expected, what) {
  const ids = received.map((a) => a.id);
  const doubled = ids.filter((id, index) => ids.indexOf(id) !== index);
  assert.deepEqual(doubled, [], `${what}: activities delivered twice: ${doubled.join(', ')}`);
  assert.deepEqual(
    received.map((a) => `${a.from?.role}: ${a.text}`),
    expected.map((a) => `${a.from?.role}: ${a.text}`),
    `${what}: the messages received are not the server's transcript, in order`,
  );
  assert.deepEqual(ids, expected.map((a) => a.id), `${what}: the ids received are not the server's`);
}

/** Fails unless `activity` is a message of the Direct Line shape that Web Chat renders. */
function assertActivityShape(activity, conversationId) {
  const shown = JSON.stringify(activity);
  assert.equal(activity.type, 'message', shown);
  assert.equal(typeof activity.id, 'string', `no id: ${shown}`);
  assert.equal(activity.channelId, 'directline', `channelId: ${shown}`);
  assert.equal(activity.conversation?.id, conversationId, `conversation.id: ${shown}`);
  assert.match(activity.timestamp ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, `timestamp: ${shown}`);
  assert.ok(['user', 'bot'].includes(activity.from?.role), `from.role: ${shown}`);
  assert.equal(typeof activity.from?.id, 'string', `from.id: ${shown}`);
}

// ---------------------------------------------------------------------------
// The scenarios, once per mode
// ---------------------------------------------------------------------------

async function scenario(mode, options) {
  const userId = `dl_node_${mode}_${randomUUID().slice(0, 8)}`;
  let grant;
  let client;
  const sent = [];

  await step(`${mode}: a token from the secret, and directlinejs goes Online with it`, async () => {
    grant = await generateToken(userId);
    client = connect({ token: grant.token, ...options });
    await online(client);
    assert.deepEqual(
      client.statuses.slice(0, 3),
      [ConnectionStatus.Uninitialized, ConnectionStatus.Connecting, ConnectionStatus.Online],
      `connection statuses: ${client.statuses}`,
    );
    assert.equal(client.directLine.conversationId, grant.conversationId, 'POST /conversations named another conversation');
    if (mode === 'websocket') {
      await until('the stream socket to open', () => client.recorder.open().length === 1);
      assert.match(client.recorder.sockets[0].url, /^ws:\/\/127\.0\.0\.1:\d+\/v3\/directline\/conversations\//);
    }
  });

  await step(`${mode}: posted messages come back once each, in order, with the echo replying to each`, async () => {
    for (const text of ['one', 'two', 'three']) {
      sent.push({ id: await post(client, userId, text), text });
    }
    for (const { id, text } of sent) {
      const reply = await echoOf(client, id, text);
      assert.equal(reply.text, text, `the echo of "${text}"`);
    }
    const transcript = await serverTranscript(grant.conversationId, grant.token);
    await until('every stored message to reach the client', () => client.messages().length >= transcript.length);
    assertOnceAndInOrder(client.messages(), transcript, mode);
    for (const activity of client.messages()) assertActivityShape(activity, grant.conversationId);
    for (const { id, text } of sent) {
      const mine = client.messages().find((a) => a.id === id);
      assert.ok(mine, `the user's own "${text}" (id ${id}) never came back`);
      assert.equal(mine.from.role, 'user');
      assert.equal(mine.from.id, userId, `the token's user id is ${userId}; "${text}" came back from ${mine.from.id}`);
    }
    assert.deepEqual(client.errors, [], 'activity$ failed');
  });

  await step(`${mode}: a typing activity is accepted`, async () => {
    const id = await first(
      client.directLine.postActivity({ type: 'typing', from: { id: userId, role: 'user' } }),
      'postActivity(typing)',
    );
    assert.notEqual(id, 'retry', 'the typing activity was refused');
  });

  if (mode === 'websocket') {
    await step('websocket: after the socket drops, directlinejs reconnects and misses and repeats nothing', async () => {
      const before = client.recorder.sockets.length;
      client.recorder.open()[0].close();
      await until('the socket to close', () => client.recorder.open().length === 0);
      // Sent through the REST API while no socket is open: the reconnect must bring it.
      const id = await post(client, userId, 'sent while the socket was down');
      assert.equal(client.recorder.sockets.length, before, 'the socket came back before the message was sent');
      await until('a new socket to open', () => client.recorder.sockets.length > before && client.recorder.open().length === 1, RECONNECT_TIMEOUT_MS);
      await echoOf(client, id, 'sent while the socket was down', RECONNECT_TIMEOUT_MS);
      // A marker after the reconnect: anything resent would arrive before its echo.
      const marker = await post(client, userId, 'after the reconnect');
      await echoOf(client, marker, 'after the reconnect');
      assertOnceAndInOrder(client.messages(), await serverTranscript(grant.conversationId, grant.token), 'after the reconnect');
      assert.equal(client.directLine.connectionStatus$.getValue(), ConnectionStatus.Online);
    });
  }

  await step(`${mode}: a new client resuming at the watermark gets only what came after it`, async () => {
    const watermark = client.directLine.watermark;
    assert.match(watermark, /^\d+$/, `the watermark is a decimal seq, got ${JSON.stringify(watermark)}`);
    client.close();
    // Sent by another client (the site's backend) while this one is away.
    const away = await rest('POST', `/conversations/${grant.conversationId}/activities`, {
      auth: grant.token,
      body: { type: 'message', from: { id: userId, role: 'user' }, text: 'sent while away' },
    });
    assert.equal(away.status, 200, `POST /activities answered ${away.status}: ${JSON.stringify(away.body)}`);
    assert.equal(typeof away.body?.id, 'string', `POST /activities answered ${JSON.stringify(away.body)}`);

    const resumed = connect({ token: grant.token, conversationId: grant.conversationId, watermark, ...options });
    try {
      await online(resumed);
      await echoOf(resumed, away.body.id, 'sent while away');
      const marker = await post(resumed, userId, 'resumed');
      await echoOf(resumed, marker, 'resumed');
      const transcript = await serverTranscript(grant.conversationId, grant.token);
      const afterWatermark = transcript.slice(transcript.findIndex((a) => a.id === away.body.id));
      assertOnceAndInOrder(resumed.messages(), afterWatermark, `resumed at watermark ${watermark}`);
      assert.deepEqual(resumed.errors, [], 'activity$ failed');
    } finally {
      resumed.close();
    }
  });
}

async function main() {
  await step('tokens/refresh gives a new token that works', async () => {
    const grant = await generateToken(`dl_node_refresh_${randomUUID().slice(0, 8)}`);
    const { status, body } = await rest('POST', '/tokens/refresh', { auth: grant.token });
    assert.equal(status, 200, `POST /tokens/refresh answered ${status}: ${JSON.stringify(body)}`);
    assert.equal(body.conversationId, grant.conversationId);
    assert.equal(typeof body.token, 'string');
    assert.ok(body.expires_in > 0);
    const listed = await rest('GET', `/conversations/${grant.conversationId}/activities`, { auth: body.token });
    assert.equal(listed.status, 200, `the refreshed token was refused: ${listed.status} ${JSON.stringify(listed.body)}`);
  });

  await scenario('websocket', {});
  await scenario('polling', { webSocket: false, pollingInterval: 300 });
}

run('directline-node', RUN_TIMEOUT_MS, main);
