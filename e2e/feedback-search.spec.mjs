// End-to-end test of the chat page's thumbs on bot replies and its search box, in
// Debian's headless Chromium driven by playwright-core. `cargo xtask e2e` starts a
// server and runs this with plain node:
//
//   CONFAB_E2E_URL=http://127.0.0.1:PORT CONFAB_E2E_BOT_TOKEN=… node e2e/feedback-search.spec.mjs
//
// One guest, two tabs: the first rates an echo reply up, down (with a comment) and
// takes it back, checking the stored history each time, while the second follows
// along live from the `feedback` frames; then the first searches for a word of an
// older conversation, opens the result and lands on the message, and a query of
// punctuation only shows the server's reason. Every wait is bounded.

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS, run, step } from './harness.mjs';

const BASE = process.env.CONFAB_E2E_URL ?? 'http://127.0.0.1:8080';
const SHOTS = process.env.CONFAB_E2E_SCREENSHOTS ?? 'target/e2e';
const CHROMIUM = process.env.CONFAB_E2E_CHROMIUM ?? '/usr/bin/chromium';
// A token of the `echo` bot, to fill a conversation with the bot's messages quickly.
const BOT_TOKEN = process.env.CONFAB_E2E_BOT_TOKEN;
const STEP_TIMEOUT_MS = 15_000;
const RUN_TIMEOUT_MS = 180_000;
// More than a history page (50), so that the page must page back to the found message.
const FILLERS = 60;

/** REST with `token`; `expectOk` false returns the status and body of a failure too. */
async function restAs(token, method, route, body, { expectOk = true } = {}) {
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
    if (expectOk) {
      assert.ok(response.ok, `${method} ${route} answered ${response.status}: ${await response.clone().text()}`);
    }
    const json = response.status === 204 ? null : await response.json();
    return expectOk ? json : { status: response.status, body: json };
  }
  throw new Error(`${method} ${route} stayed rate limited`);
}

/** The token the page keeps in localStorage: both tabs share it, as one user. */
async function tokenOf(page) {
  return page.evaluate(() => JSON.parse(localStorage.getItem('confab.token')).token);
}

async function historyOf(token, id) {
  return (await restAs(token, 'GET', `/conversations/${id}/history?limit=100`)).messages;
}

async function ready(page) {
  await page.waitForSelector('html[data-ready="true"]');
}

async function send(page, text) {
  await page.locator('#composer-input').fill(text);
  await page.locator('#composer-input').press('Enter');
}

async function newChat(page, botId) {
  const before = await page.evaluate(() => window.confabDebug.currentConversation);
  await page.selectOption('#bot-select', botId);
  await page.click('#new-chat-button');
  await page.waitForFunction((old) => {
    const id = window.confabDebug.currentConversation;
    return id && id !== old && document.activeElement?.id === 'composer-input';
  }, before);
  return page.evaluate(() => window.confabDebug.currentConversation);
}

/** The stored message of `sender` with exactly `text` in the page's log. */
function shown(page, sender, text) {
  return page.locator(`#messages > li.message.from-${sender}[data-id]`, {
    has: page.locator('.bubble', { hasText: text }),
  });
}

/** Waits until the reply `id` shows `rating` pressed (or none, for null). */
async function waitPressed(page, id, rating) {
  await page.waitForFunction(
    ([messageId, wanted]) => {
      const buttons = document.querySelectorAll(`li[data-id="${messageId}"] .feedback-button`);
      return (
        buttons.length === 2 &&
        [...buttons].every((b) => b.getAttribute('aria-pressed') === String(b.dataset.rating === wanted))
      );
    },
    [id, rating],
  );
}

async function openPage(context) {
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const problems = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
  });
  return { page, problems };
}

async function main() {
  assert.ok(BOT_TOKEN, 'CONFAB_E2E_BOT_TOKEN is required (cargo xtask e2e sets it)');
  await mkdir(SHOTS, { recursive: true });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: STEP_TIMEOUT_MS });
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 });
    // Nothing may leave the machine.
    await context.route('**/*', (route) => {
      const url = new URL(route.request().url());
      return url.hostname === '127.0.0.1' || url.protocol === 'data:' ? route.continue() : route.abort();
    });
    const { page, problems } = await openPage(context);
    let token;
    let olderId;
    let foundId;
    let chatId;
    let replyId;

    await step('the page loads, signs in as a guest and connects', async () => {
      await page.goto(BASE);
      await ready(page);
      await page.waitForFunction(() => window.confabDebug.connected);
      token = await tokenOf(page);
    });

    await step('an older conversation holds a word, then more messages than a page', async () => {
      olderId = await newChat(page, 'echo');
      await send(page, 'Where is my quokka parcel?');
      await shown(page, 'bot', 'Where is my quokka parcel?').waitFor();
      foundId = await shown(page, 'user', 'Where is my quokka parcel?').getAttribute('data-id');
      for (let i = 1; i <= FILLERS; i += 1) {
        await restAs(BOT_TOKEN, 'POST', `/conversations/${olderId}/messages`, { content: `Filler line ${i}` });
      }
      await shown(page, 'bot', `Filler line ${FILLERS}`).waitFor();
    });

    await step('a new conversation: the echo reply has thumbs, the user message none', async () => {
      chatId = await newChat(page, 'echo');
      await send(page, 'Tell me about thumbs');
      const reply = shown(page, 'bot', 'Tell me about thumbs');
      await reply.waitFor();
      replyId = await reply.getAttribute('data-id');
      await waitPressed(page, replyId, null);
      assert.equal(await reply.getByRole('button', { name: 'Good reply' }).getAttribute('aria-pressed'), 'false');
      assert.equal(await reply.getByRole('group', { name: 'Rate this reply' }).count(), 1);
      assert.equal(await shown(page, 'user', 'Tell me about thumbs').locator('.feedback').count(), 0);
    });

    const { page: other, problems: otherProblems } = await openPage(context);
    await step('a second tab of the same user opens the same conversation', async () => {
      await other.goto(`${BASE}/#${chatId}`);
      await ready(other);
      await other.waitForFunction(() => window.confabDebug.connected);
      await shown(other, 'bot', 'Tell me about thumbs').waitFor();
      await waitPressed(other, replyId, null);
    });

    const reply = () => page.locator(`li[data-id="${replyId}"]`);
    await step('thumbs up: pressed, stored, and pressed in the other tab too', async () => {
      await reply().getByRole('button', { name: 'Good reply' }).click();
      await waitPressed(page, replyId, 'up');
      const stored = (await historyOf(token, chatId)).find((m) => m.id === replyId);
      assert.equal(stored.feedback?.rating, 'up');
      await waitPressed(other, replyId, 'up');
    });

    await step('thumbs down instead, with a comment: stored, and shown in both tabs', async () => {
      await reply().getByRole('button', { name: 'Bad reply' }).click();
      await waitPressed(page, replyId, 'down');
      await waitPressed(other, replyId, 'down');
      const comment = reply().getByRole('textbox', { name: /What was wrong/ });
      await comment.waitFor();
      assert.ok(await comment.evaluate((node) => node === document.activeElement), 'the comment box has the focus');
      await comment.fill('Too short <b>really</b>');
      await comment.press('Enter');
      await reply().locator('.feedback-note', { hasText: 'Too short <b>really</b>' }).waitFor();
      await other.locator(`li[data-id="${replyId}"] .feedback-note`, { hasText: 'Too short <b>really</b>' }).waitFor();
      assert.equal(await reply().locator('.feedback-comment').count(), 0);
      assert.equal(await other.locator(`li[data-id="${replyId}"] .feedback-note b`).count(), 0, 'the comment is text');
      const stored = (await historyOf(token, chatId)).find((m) => m.id === replyId);
      assert.equal(stored.feedback?.rating, 'down');
      assert.equal(stored.feedback?.comment, 'Too short <b>really</b>');
      await page.screenshot({ path: path.join(SHOTS, 'feedback.png') });
    });

    await step('thumbs down again takes the rating back, in both tabs', async () => {
      await reply().getByRole('button', { name: 'Bad reply' }).click();
      await waitPressed(page, replyId, null);
      await waitPressed(other, replyId, null);
      assert.equal(await other.locator(`li[data-id="${replyId}"] .feedback-note`).isVisible(), false);
      const stored = (await historyOf(token, chatId)).find((m) => m.id === replyId);
      assert.equal(stored.feedback, null);
    });

    await step('a reload shows the stored rating', async () => {
      await reply().getByRole('button', { name: 'Good reply' }).click();
      await waitPressed(page, replyId, 'up');
      await other.reload();
      await ready(other);
      await waitPressed(other, replyId, 'up');
    });

    await step('searching a word finds it in the older conversation, with the word marked', async () => {
      // A background tab's animation frames (and so playwright's waits) are throttled.
      await page.bringToFront();
      await page.locator('#search-input').fill('QUOKKA');
      await page.locator('#search-input').press('Enter');
      const results = page.locator('#search-list .search-result');
      await page.waitForFunction(() => document.querySelectorAll('#search-list .search-result').length === 2);
      assert.equal(await page.locator('#conversation-list').isVisible(), false, 'the results take the list’s place');
      const expectedTitle = await page.locator(`.conversation-item[data-id="${olderId}"] .item-title`).textContent();
      for (const title of await results.locator('.result-title').allTextContents()) assert.equal(title, expectedTitle);
      const userResult = page.locator(`.search-result[data-message-id="${foundId}"]`);
      assert.equal(await userResult.locator('mark').allTextContents().then((t) => t.join()), 'quokka');
      assert.equal(await userResult.locator('.result-snippet').textContent(), 'Where is my quokka parcel?');
      assert.equal(await userResult.locator('.result-snippet *:not(mark)').count(), 0);
      assert.match(await userResult.locator('.result-meta').textContent(), /^You · /);
      await page.screenshot({ path: path.join(SHOTS, 'search-results.png') });
    });

    await step('clicking the result opens that conversation at the message, highlighted', async () => {
      await page.locator(`.search-result[data-message-id="${foundId}"]`).click();
      await page.waitForFunction((id) => window.confabDebug.currentConversation === id, olderId);
      const found = page.locator(`#messages > li.message.found[data-id="${foundId}"]`);
      await found.waitFor();
      const box = await found.boundingBox();
      const scroller = await page.locator('#log-scroller').boundingBox();
      assert.ok(
        box && box.y >= scroller.y && box.y + box.height <= scroller.y + scroller.height,
        'the found message is scrolled into view',
      );
      // Everything from it up to the newest is shown, once, in order: the view stays whole.
      const seqs = await page.$$eval('#messages > li.message[data-id]', (items) => items.map((i) => Number(i.dataset.seq)));
      const history = await historyOf(token, olderId);
      const last = history.at(-1).seq;
      assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => last - seqs.length + 1 + i));
      assert.ok(seqs.includes(history.find((m) => m.id === foundId).seq));
      await page.screenshot({ path: path.join(SHOTS, 'search-found.png') });
      await page.waitForFunction((id) => !document.querySelector(`li[data-id="${id}"]`).classList.contains('found'), foundId, {
        timeout: 8000,
      });
    });

    await step('"More results" pages on with next_cursor', async () => {
      await page.locator('#search-input').fill('filler');
      await page.locator('#search-input').press('Enter');
      await page.waitForFunction(() => document.querySelectorAll('#search-list .search-result').length === 20);
      await page.getByRole('button', { name: 'More results' }).click();
      await page.waitForFunction(() => document.querySelectorAll('#search-list .search-result').length === 40);
      const ids = await page.$$eval('#search-list .search-result', (b) => b.map((x) => x.dataset.messageId));
      assert.equal(new Set(ids).size, 40, 'a result is shown twice');
    });

    await step('a query of punctuation only shows the server’s reason', async () => {
      const refused = await restAs(token, 'GET', `/search?q=${encodeURIComponent('?! …')}`, undefined, { expectOk: false });
      assert.equal(refused.status, 400);
      assert.ok(refused.body.detail, 'the 400 has a detail');
      await page.locator('#search-input').fill('?! …');
      await page.locator('#search-input').press('Enter');
      await page.locator('#search-status.search-error', { hasText: refused.body.detail }).waitFor();
      assert.equal(await page.locator('#search-list .search-result').count(), 0);
      await page.screenshot({ path: path.join(SHOTS, 'search-error.png') });
    });

    await step('Escape goes back to the conversation list', async () => {
      await page.locator('#search-input').press('Escape');
      await page.locator('#conversation-list').waitFor({ state: 'visible' });
      assert.equal(await page.locator('#search-panel').isVisible(), false);
    });

    await step('no page error or console error', async () => {
      // Chromium logs every 4xx answer; the refused search above is one on purpose.
      const refusedSearch = /Failed to load resource: the server responded with a status of 400/;
      assert.deepEqual([...problems, ...otherProblems].filter((p) => !refusedSearch.test(p)), []);
      assert.equal(problems.filter((p) => refusedSearch.test(p)).length, 1);
    });
    await context.close();
  } finally {
    await browser.close();
  }
}

run('e2e feedback and search', RUN_TIMEOUT_MS, main, `; screenshots in ${SHOTS}`);
