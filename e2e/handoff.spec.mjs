// End-to-end test of human handoff in Debian's headless Chromium, driven by
// playwright-core: a user on the chat page asks for a person, an agent on the agents'
// page (`/agent`) sees the conversation arrive in the queue, claims it and answers,
// live both ways, while the bot stays silent; the agent gives the conversation back
// and the bot answers again. `cargo xtask e2e` runs it after chat.spec.mjs against the
// same server, with two agents' tokens minted by `confab token --agent`:
//
//   CONFAB_E2E_URL=http://127.0.0.1:PORT CONFAB_E2E_AGENT_TOKEN=… \
//   CONFAB_E2E_OTHER_AGENT_TOKEN=… node e2e/handoff.spec.mjs
//
// `alice` works the page; `bob` only claims one conversation through REST, first, so
// that alice's click meets `409 handoff_taken`. Each browser context is one person.
// Every wait is bounded, and every request leaving 127.0.0.1 is aborted.

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS, run, step } from './harness.mjs';

const BASE = process.env.CONFAB_E2E_URL ?? 'http://127.0.0.1:8080';
const SHOTS = process.env.CONFAB_E2E_SCREENSHOTS ?? 'target/e2e';
const CHROMIUM = process.env.CONFAB_E2E_CHROMIUM ?? '/usr/bin/chromium';
// `confab token --user alice --agent` and `confab token --user bob --agent`.
const AGENT_TOKEN = process.env.CONFAB_E2E_AGENT_TOKEN;
const OTHER_AGENT_TOKEN = process.env.CONFAB_E2E_OTHER_AGENT_TOKEN;
const STEP_TIMEOUT_MS = 15_000;
const RUN_TIMEOUT_MS = 150_000;
// How long the bot is given to (wrongly) answer a message sent during the handoff.
const SILENCE_MS = 2_000;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/** REST with `token`; waits out a `429` as its `Retry-After` says, a bounded number of times. */
async function rest(token, method, route, body, expected = null) {
  for (let attempt = 0; attempt < 30; attempt += 1) {
    const response = await fetch(new URL(route, BASE), {
      method,
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
    });
    if (response.status === 429) {
      const seconds = Math.min(Number(response.headers.get('retry-after')) || 1, 5);
      await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
      continue;
    }
    if (expected !== null) {
      assert.equal(response.status, expected, `${method} ${route}: ${await response.clone().text()}`);
    } else {
      assert.ok(response.ok, `${method} ${route} answered ${response.status}: ${await response.clone().text()}`);
    }
    return response.status === 204 ? null : response.json();
  }
  throw new Error(`${method} ${route} stayed rate limited`);
}

async function newGuest() {
  const response = await fetch(new URL('/auth/guest', BASE), {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: '{}',
    signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
  });
  assert.ok(response.ok, `POST /auth/guest answered ${response.status}`);
  return response.json();
}

/** The guest the chat page signed in as, `{user_id, token}` from its localStorage. */
async function pageGuest(page) {
  return page.evaluate(() => JSON.parse(localStorage.getItem('confab.token')));
}

async function historyOf(token, id) {
  const page = await rest(token, 'GET', `/conversations/${id}/history?limit=100`);
  assert.equal(page.has_more, false, 'a history longer than one page');
  return page.messages;
}

async function ready(page) {
  await page.waitForSelector('html[data-ready="true"]');
}

async function send(page, text) {
  await page.locator('#composer-input').fill(text);
  await page.locator('#composer-input').press('Enter');
}

/** A stored message of `sender` holding `text`, in the page's log (either page). */
function shown(page, sender, text) {
  return page.locator(`#messages > li.message.from-${sender}[data-id] .bubble`, { hasText: text }).first();
}

/** The handoff notice of `state` ("waiting", "agent", "bot") in the page's log. */
function notice(page, state) {
  return page.locator('#messages > li.notice[data-id]', { hasText: NOTICES[state] });
}
const NOTICES = { waiting: 'Waiting for a person to join', agent: 'alice joined', bot: 'Back to the bot' };

/** The stored messages the chat page shows, in order. */
async function shownMessages(page) {
  return page.$$eval('#messages > li.message[data-id]', (items) =>
    items.map((item) => ({
      id: item.dataset.id,
      sender: [...item.classList].find((c) => c.startsWith('from-')).slice(5),
      text: item.querySelector('.bubble').textContent,
    })),
  );
}

async function openPage(browser, viewport) {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1 });
  // Nothing may leave the machine: the pages are served by the server under test only.
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === '127.0.0.1' || url.protocol === 'data:') return route.continue();
    return route.abort();
  });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const problems = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console error: ${message.text()} at ${message.location().url}`);
  });
  return { context, page, problems };
}

/**
 * Types into `page`'s message box, a key at a time, until `other` shows the typing
 * indicator: a page sends `typing` at most every 3 s, so one key may not be enough.
 */
async function typeUntilSeen(page, other, expected) {
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  const indicator = other.locator('#typing:not([hidden]) #typing-text');
  while (Date.now() < deadline) {
    await page.locator('#composer-input').press('.');
    try {
      await indicator.waitFor({ timeout: 700 });
      assert.equal(await indicator.textContent(), expected);
      return;
    } catch (error) {
      if (error instanceof assert.AssertionError) throw error;
    }
  }
  throw new Error(`the typing indicator "${expected}" never showed`);
}

// ---------------------------------------------------------------------------
// The scenario
// ---------------------------------------------------------------------------

async function main() {
  assert.ok(AGENT_TOKEN && OTHER_AGENT_TOKEN, 'CONFAB_E2E_AGENT_TOKEN and CONFAB_E2E_OTHER_AGENT_TOKEN are required');
  await mkdir(SHOTS, { recursive: true });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: CHROMIUM_ARGS,
    timeout: STEP_TIMEOUT_MS,
  });
  try {
    const user = await openPage(browser, { width: 1100, height: 760 });
    const agent = await openPage(browser, { width: 1280, height: 800 });
    const u = user.page;
    const a = agent.page;
    let id;
    let userToken;
    let userId;
    let botName;
    let handoffSeq;

    await step('the user starts a chat with echo and gets its reply', async () => {
      await u.goto(BASE);
      await ready(u);
      await u.waitForFunction(() => window.confabDebug.connected);
      ({ token: userToken, user_id: userId } = await pageGuest(u));
      botName = (await rest(userToken, 'GET', '/bots/echo')).name;
      await u.selectOption('#bot-select', 'echo');
      await u.click('#new-chat-button');
      await u.waitForFunction(() => document.activeElement?.id === 'composer-input' && window.confabDebug.currentConversation);
      id = await u.evaluate(() => window.confabDebug.currentConversation);
      await send(u, 'Hello, my parcel is late');
      await shown(u, 'bot', 'Hello, my parcel is late').waitFor();
      assert.equal(await u.locator('#handoff-button').isVisible(), true, 'no "Talk to a person" button');
      assert.equal(await u.locator('#handoff-button').textContent(), 'Talk to a person');
      assert.equal(await u.locator('#handoff-state').textContent(), '');
    });

    await step("the agents' page explains how to get a token and refuses a user's", async () => {
      await a.goto(`${BASE}/agent`);
      await ready(a);
      assert.match(await a.locator('#sign-in').textContent(), /confab token --user NAME --agent/);
      await a.locator('#token-input').fill(userToken);
      await a.click('#sign-in-button');
      await a.locator('#sign-in-error', { hasText: "not an agent's" }).waitFor();
      assert.equal(await a.locator('#desk').isVisible(), false);
    });

    await step('the agent signs in with an agent token and sees the queue, live', async () => {
      await a.locator('#token-input').fill(AGENT_TOKEN);
      await a.click('#sign-in-button');
      await a.locator('#desk').waitFor();
      await a.waitForFunction(() => window.confabAgentDebug.connected);
      assert.equal(await a.locator('#agent-name').textContent(), 'alice');
      assert.equal(await a.evaluate(() => sessionStorage.getItem('confab.agent.token')), AGENT_TOKEN);
      assert.equal(await a.locator(`.queue-item[data-id="${id}"]`).count(), 0, 'in the queue before asking');
      // Gone after a reload: nothing below may reload the page.
      await a.evaluate(() => {
        window.__sameDocument = true;
      });
    });

    await step('the user clicks "Talk to a person" and the page says it waits', async () => {
      await u.click('#handoff-button');
      await u.locator('#handoff-state', { hasText: 'Waiting for a person to join' }).waitFor();
      await u.locator('#handoff-button').waitFor({ state: 'hidden' });
      await notice(u, 'waiting').waitFor();
      assert.equal((await rest(userToken, 'GET', `/conversations/${id}`)).handoff, 'waiting');
    });

    await step('the conversation appears in the queue without a reload, with its bot and messages', async () => {
      const item = a.locator(`.queue-item[data-id="${id}"]`);
      await item.waitFor();
      assert.equal(await a.evaluate(() => window.__sameDocument), true, 'the page reloaded');
      assert.equal(await item.locator('.queue-user').textContent(), `${botName} · ${userId}`);
      assert.match(await item.locator('.queue-wait').textContent(), /^waiting \d+ s$/);
      const recent = await item.locator('.queue-recent li').allTextContents();
      assert.ok(recent.includes('User: Hello, my parcel is late'), `recent messages: ${recent}`);
      assert.ok(recent.includes(`${botName}: Hello, my parcel is late`), `recent messages: ${recent}`);
      await a.mouse.move(0, 0);
      await a.screenshot({ path: path.join(SHOTS, 'agent-queue.png') });
    });

    await step('a conversation another agent claimed first is refused with a clear message', async () => {
      // A second user waits too; bob takes them through REST while alice's queue still
      // shows them (her page's polls are answered with the queue as it was).
      const other = await newGuest();
      const started = await rest(other.token, 'POST', '/conversations/start?wait=true', {
        bot_id: 'echo',
        initial_message: 'Is anyone there?',
      });
      const otherId = started.conversation_id;
      await rest(other.token, 'POST', `/conversations/${otherId}/handoff`);
      const item = a.locator(`.queue-item[data-id="${otherId}"]`);
      let frozen = null;
      await a.route('**/agent/queue*', async (route) => {
        if (frozen) return route.fulfill({ json: frozen });
        const response = await route.fetch();
        const body = await response.json();
        if (body.conversations.some((entry) => entry.conversation.id === otherId)) frozen = body;
        return route.fulfill({ response, json: body });
      });
      await item.waitFor();
      const deadline = Date.now() + STEP_TIMEOUT_MS;
      while (!frozen && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
      assert.ok(frozen, 'the queue was never seen with the second conversation');
      await rest(OTHER_AGENT_TOKEN, 'POST', `/agent/conversations/${otherId}/claim`);
      await item.locator('.claim-button').click();
      await a.locator('#toast', { hasText: 'Another agent claimed this conversation first' }).waitFor();
      assert.equal(await a.evaluate(() => window.confabAgentDebug.openConversation), null);
      await a.unroute('**/agent/queue*');
      await item.waitFor({ state: 'detached' });
      await a.locator(`.queue-item[data-id="${id}"]`).waitFor();
    });

    await step('the agent claims the conversation and sees its history; the user sees alice join', async () => {
      await a.locator(`.queue-item[data-id="${id}"] .claim-button`).click();
      await a.waitForFunction((wanted) => window.confabAgentDebug.openConversation === wanted, id);
      await shown(a, 'user', 'Hello, my parcel is late').waitFor();
      await shown(a, 'bot', 'Hello, my parcel is late').waitFor();
      await notice(a, 'agent').waitFor();
      await a.locator(`#held li[data-id="${id}"]`).waitFor();
      await a.locator(`.queue-item[data-id="${id}"]`).waitFor({ state: 'detached' });
      assert.equal(await a.evaluate(() => document.activeElement.id), 'composer-input');

      await u.locator('#handoff-state', { hasText: 'You are talking with alice' }).waitFor();
      await notice(u, 'agent').waitFor();
      assert.equal(await u.locator('#handoff-button').isVisible(), false);
      const info = await rest(userToken, 'GET', `/conversations/${id}`);
      assert.equal(info.handoff, 'agent');
      assert.equal(info.handoff_agent, 'alice');
      const history = await historyOf(userToken, id);
      handoffSeq = history.find((m) => m.sender === 'system' && m.metadata.handoff === 'waiting').seq;
    });

    await step('the agent types and writes; the user sees both live, signed "alice (agent)"', async () => {
      await typeUntilSeen(a, u, 'alice (agent) is typing…');
      await send(a, 'Hi, I am **Alice**. Let me look into it.');
      const message = u.locator('#messages > li.from-agent[data-id]', { hasText: 'Let me look into it.' });
      await message.waitFor();
      assert.equal(await message.locator('.bubble strong').textContent(), 'Alice');
      assert.match(await message.locator('.message-meta').textContent(), /^alice \(agent\) · /);
      await u.locator('#typing').waitFor({ state: 'hidden' });
      await a.locator('#messages > li.mine[data-id]', { hasText: 'Let me look into it.' }).waitFor();
      await a.waitForFunction(() => !document.querySelector('#messages li.pending'));
    });

    await step('the user types and writes; the agent sees both live', async () => {
      await typeUntilSeen(u, a, `${userId} is typing…`);
      await send(u, 'It was due on Monday.');
      await shown(a, 'user', 'It was due on Monday.').waitFor();
      await a.locator('#typing').waitFor({ state: 'hidden' });
    });

    await step('the bot says nothing while a person answers, on the page and in the history', async () => {
      await new Promise((resolve) => setTimeout(resolve, SILENCE_MS));
      const bots = await u.locator('#messages > li.from-bot[data-id]').count();
      assert.equal(bots, 1, 'the bot answered during the handoff');
      // Everything stored since the user asked for a person, and nothing of the bot's.
      const after = (await historyOf(userToken, id)).filter((m) => m.seq > handoffSeq);
      assert.deepEqual(
        after.map((m) => `${m.sender}:${m.content}`),
        ['system:alice joined', 'agent:Hi, I am **Alice**. Let me look into it.', 'user:It was due on Monday.'],
      );
      assert.equal(after[1].sender_id, 'alice');
    });

    await step('a reload of the chat page shows the banner from the conversation itself', async () => {
      await u.reload();
      await ready(u);
      await u.locator('#handoff-state', { hasText: 'You are talking with alice' }).waitFor();
      assert.equal(await u.locator('#handoff-button').isVisible(), false);
      await shown(u, 'agent', 'Let me look into it.').waitFor();
      await u.waitForFunction(() => window.confabDebug.connected);
      await u.mouse.move(0, 0);
      await u.screenshot({ path: path.join(SHOTS, 'handoff-user.png') });
      await a.mouse.move(0, 0);
      await a.screenshot({ path: path.join(SHOTS, 'handoff-agent.png') });
    });

    await step('the agent releases; the user is back with the bot, which answers again', async () => {
      await a.click('#release-button');
      await a.locator('#empty-state').waitFor();
      await a.locator(`#held li[data-id="${id}"]`).waitFor({ state: 'detached' });
      await u.locator('#handoff-state', { hasText: `Back to the bot: ${botName} answers again.` }).waitFor();
      await u.locator('#handoff-button').waitFor();
      await notice(u, 'bot').waitFor();
      await send(u, 'Are you back, bot?');
      await shown(u, 'bot', 'Are you back, bot?').waitFor();
      assert.equal(await u.locator('#handoff-state').textContent(), '', 'the banner outlived the next message');
      assert.equal((await rest(userToken, 'GET', `/conversations/${id}`)).handoff, 'bot');
      const history = await historyOf(userToken, id);
      assert.deepEqual(
        (await shownMessages(u)).map((m) => m.id),
        history.map((m) => m.id),
        'the chat page does not show exactly the stored history',
      );
      assert.deepEqual(
        history.slice(-2).map((m) => `${m.sender}:${m.content}`),
        ['user:Are you back, bot?', 'bot:Are you back, bot?'],
      );
    });

    // The refused sign-in and the lost claim are logged by the browser as failed
    // requests; the pages themselves must log nothing else.
    const expected = /(403 \(Forbidden\)|409 \(Conflict\))/;
    assert.deepEqual(user.problems, [], 'the chat page logged errors');
    assert.deepEqual(agent.problems.filter((p) => !expected.test(p)), [], "the agents' page logged errors");
    await user.context.close();
    await agent.context.close();
  } finally {
    await browser.close();
  }
}

run('e2e handoff', RUN_TIMEOUT_MS, main, `; screenshots in ${SHOTS}`);
