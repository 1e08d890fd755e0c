// End-to-end test of confab's web page in Debian's headless Chromium, driven by
// playwright-core. `cargo xtask e2e` starts a server and runs this with plain node:
//
//   CONFAB_E2E_URL=http://127.0.0.1:PORT CONFAB_E2E_SCREENSHOTS=target/e2e node e2e/chat.spec.mjs
//
// Each step names what a user does and what they must see; the first failure stops
// the run with that step's name. Every wait is bounded, and every request leaving
// 127.0.0.1 is aborted.

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS, run, step } from './harness.mjs';

const BASE = process.env.CONFAB_E2E_URL ?? 'http://127.0.0.1:8080';
const SHOTS = process.env.CONFAB_E2E_SCREENSHOTS ?? 'target/e2e';
const CHROMIUM = process.env.CONFAB_E2E_CHROMIUM ?? '/usr/bin/chromium';
// A token of the `echo` bot (`confab token --bot echo`), to post as the bot does.
const BOT_TOKEN = process.env.CONFAB_E2E_BOT_TOKEN;
// Images "on the web": the browser's requests to this host are answered by the
// script itself with a picture it draws, so nothing leaves the machine.
const IMAGE_HOST = 'images.e2e.test';
const STEP_TIMEOUT_MS = 15_000;
const RUN_TIMEOUT_MS = 240_000;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/** REST as the page's own user, with the token the page keeps in localStorage. */
async function rest(page, method, route, body) {
  const { token } = await page.evaluate(() => JSON.parse(localStorage.getItem('confab.token')));
  return restAs(token, method, route, body);
}

/** REST with `token`; waits out a `429` as its `Retry-After` says, a bounded number of times. */
async function restAs(token, method, route, body) {
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
    assert.ok(response.ok, `${method} ${route} answered ${response.status}: ${await response.clone().text()}`);
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

/** What the message log shows, in order: sender, text, id and seq of every stored message. */
async function shownMessages(page) {
  return page.$$eval('#messages > li.message[data-id]', (items) =>
    items.map((item) => ({
      id: item.dataset.id,
      seq: Number(item.dataset.seq),
      sender: [...item.classList].find((c) => c.startsWith('from-')).slice(5),
      text: item.querySelector('.bubble').textContent,
    })),
  );
}

/** Fails unless the log shows each message once, in seq order, with no gap. */
function assertWholeAndOnce(messages, history) {
  const ids = messages.map((m) => m.id);
  assert.equal(new Set(ids).size, ids.length, 'a message is shown twice');
  const seqs = messages.map((m) => m.seq);
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'messages are out of order');
  assert.deepEqual(
    messages.map((m) => m.id),
    history.map((m) => m.id),
    'the page does not show exactly the stored history',
  );
}

async function historyOf(page, id) {
  const all = [];
  let before = '';
  for (let pages = 0; pages < 20; pages += 1) {
    const page_ = await rest(page, 'GET', `/conversations/${id}/history?limit=100${before}`);
    all.unshift(...page_.messages);
    if (!page_.has_more) return all;
    before = `&before=${page_.messages[0].seq}`;
  }
  throw new Error('history longer than 2000 messages');
}

async function waitForText(page, sender, text) {
  await page.locator(`#messages > li.message.from-${sender}[data-id] .bubble`, { hasText: text }).first().waitFor();
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
    // The page moves the focus to the message box once the conversation is open.
    return id && id !== old && document.activeElement?.id === 'composer-input';
  }, before);
  return page.evaluate(() => window.confabDebug.currentConversation);
}

/** A `width`×`height` PNG of a diagonal gradient, drawn here. */
function png(width, height) {
  const chunk = (type, data) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bits per channel
  header[9] = 2; // RGB
  const rows = [];
  for (let y = 0; y < height; y += 1) {
    const row = Buffer.alloc(1 + width * 3);
    for (let x = 0; x < width; x += 1) {
      row[1 + x * 3] = 79 + Math.round((x / width) * 120);
      row[2 + x * 3] = 70 + Math.round((y / height) * 150);
      row[3 + x * 3] = 229;
    }
    rows.push(row);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(Buffer.concat(rows))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
const PICTURE = png(320, 200);

async function openPage(browser, viewport) {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1 });
  // Nothing may leave the machine: the page is served by the server under test only.
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === '127.0.0.1' || url.protocol === 'data:') return route.continue();
    if (url.hostname === IMAGE_HOST && url.protocol === 'https:') {
      return route.fulfill({ status: 200, contentType: 'image/png', body: PICTURE });
    }
    return route.abort();
  });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const problems = [];
  const dialogs = [];
  // A dialog would be a bot's script running: noted, dismissed, and it fails the run.
  page.on('dialog', (dialog) => {
    dialogs.push(dialog.message());
    dialog.dismiss().catch(() => {});
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console error: ${message.text()} at ${message.location().url}`);
  });
  return { context, page, problems, dialogs };
}

/** The texts of the quick reply buttons shown, joined by commas. */
async function quickReplies(page) {
  return page.$$eval('#quick-replies:not([hidden]) button', (buttons) => buttons.map((b) => b.textContent).join(','));
}

// ---------------------------------------------------------------------------
// The scenario
// ---------------------------------------------------------------------------

async function main() {
  await mkdir(SHOTS, { recursive: true });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: CHROMIUM_ARGS,
    timeout: STEP_TIMEOUT_MS,
  });
  try {
    const { context, page, problems, dialogs } = await openPage(browser, { width: 1280, height: 800 });
    let echoId;
    let streamId;
    let markdownId;

    await step('the page loads, signs in as a guest and connects', async () => {
      await page.goto(BASE);
      await ready(page);
      await page.waitForFunction(() => window.confabDebug.connected);
      const stored = await page.evaluate(() => JSON.parse(localStorage.getItem('confab.token')));
      assert.match(stored.user_id, /^guest-/);
      const bots = await page.$$eval('#bot-select option', (options) => options.map((o) => o.value));
      assert.ok(bots.includes('echo') && bots.includes('echo-stream'), `bots offered: ${bots}`);
      assert.equal(await page.locator('#list-empty').isVisible(), true);
    });

    await step('a keyboard user reaches the skip link first', async () => {
      await page.keyboard.press('Tab');
      assert.equal(await page.evaluate(() => document.activeElement.className), 'skip-link');
    });

    await step('starting a chat with echo and sending shows the reply', async () => {
      echoId = await newChat(page, 'echo');
      await send(page, 'Hello, confab!');
      await waitForText(page, 'user', 'Hello, confab!');
      await waitForText(page, 'bot', 'Hello, confab!');
      await send(page, 'How are you today?');
      await waitForText(page, 'bot', 'How are you today?');
      assertWholeAndOnce(await shownMessages(page), await historyOf(page, echoId));
      await page.locator('.conversation-item', { hasText: 'How are you today?' }).waitFor();
    });

    await step('a reload shows the history again', async () => {
      await page.reload();
      await ready(page);
      assert.equal(await page.evaluate(() => window.confabDebug.currentConversation), echoId);
      const shown = await shownMessages(page);
      assert.deepEqual(
        shown.map((m) => `${m.sender}:${m.text}`),
        ['user:Hello, confab!', 'bot:Hello, confab!', 'user:How are you today?', 'bot:How are you today?'],
      );
    });

    await step('echo-stream streams its reply word by word, with a typing indicator', async () => {
      streamId = await newChat(page, 'echo-stream');
      await page.evaluate(() => {
        window.__seen = { streaming: [], typing: false };
        new MutationObserver(() => {
          const streaming = document.querySelector('#messages .message.streaming .bubble');
          if (streaming) window.__seen.streaming.push(streaming.textContent);
          if (!document.querySelector('#typing').hidden) window.__seen.typing = true;
        }).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
      });
      const words = 'streaming replies arrive one word at a time and the stored message replaces them';
      await send(page, words);
      await waitForText(page, 'bot', words);
      const seen = await page.evaluate(() => window.__seen);
      assert.ok(seen.typing, 'the typing indicator never showed');
      assert.ok(
        seen.streaming.some((text) => text.length > 0 && text.length < words.length),
        `no partial reply was shown: ${JSON.stringify(seen.streaming.slice(0, 5))}`,
      );
      await page.waitForFunction(() => !document.querySelector('#messages .message.streaming'));
      await page.waitForFunction(() => document.querySelector('#typing').hidden);
      const shown = await shownMessages(page);
      assert.deepEqual(shown.map((m) => m.sender), ['user', 'bot']);
      assert.equal(shown[1].text, words);
    });

    await step('switching conversations shows each one its own messages', async () => {
      await page.locator(`.conversation-item[data-id="${echoId}"]`).click();
      await page.waitForFunction((id) => window.confabDebug.currentConversation === id, echoId);
      await waitForText(page, 'bot', 'How are you today?');
      assert.equal((await shownMessages(page)).length, 4);
      await page.locator(`.conversation-item[data-id="${streamId}"]`).click();
      await waitForText(page, 'bot', 'stored message replaces them');
      assert.equal((await shownMessages(page)).length, 2);
    });

    await step('a streamed Markdown reply is rendered as it grows, in one element that only grows', async () => {
      await page.locator(`.conversation-item[data-id="${streamId}"]`).click();
      await page.waitForFunction((id) => window.confabDebug.currentConversation === id, streamId);
      await page.evaluate(() => {
        window.__stream = { bubbles: new Set(), heights: [], boldWhilePartial: false };
        new MutationObserver(() => {
          const bubble = document.querySelector('#messages .message.streaming .bubble');
          if (!bubble) return;
          window.__stream.bubbles.add(bubble);
          window.__stream.heights.push(bubble.getBoundingClientRect().height);
          if (bubble.querySelector('strong') && !bubble.querySelector('em')) window.__stream.boldWhilePartial = true;
        }).observe(document.querySelector('#messages'), { subtree: true, childList: true, characterData: true });
      });
      await send(page, '**Streamed** Markdown arrives word by word and is *rendered* as it grows');
      await page.locator('#messages > li.from-bot[data-id] .bubble em', { hasText: 'rendered' }).waitFor();
      await page.waitForFunction(() => !document.querySelector('#messages .message.streaming'));
      const seen = await page.evaluate(() => ({
        bubbles: window.__stream.bubbles.size,
        heights: window.__stream.heights,
        boldWhilePartial: window.__stream.boldWhilePartial,
      }));
      assert.ok(seen.boldWhilePartial, 'the partial reply was not rendered as Markdown');
      assert.equal(seen.bubbles, 1, 'the streaming bubble was rebuilt instead of grown');
      for (let i = 1; i < seen.heights.length; i += 1) {
        assert.ok(seen.heights[i] >= seen.heights[i - 1], `the bubble shrank while streaming: ${seen.heights}`);
      }
    });

    await step('the demo bot offers quick replies as buttons, and clicking large gets its answer', async () => {
      await newChat(page, 'demo');
      await page.evaluate(() => {
        window.__offers = [];
        const region = document.querySelector('#quick-replies');
        new MutationObserver(() => {
          const shown = region.hidden ? '' : [...region.querySelectorAll('button')].map((b) => b.textContent).join(',');
          if (window.__offers.at(-1) !== shown) window.__offers.push(shown);
        }).observe(region, { subtree: true, childList: true, attributes: true });
      });
      await send(page, "I'd like a pizza");
      await waitForText(page, 'bot', 'What size would you like?');
      await page.waitForFunction(() => document.querySelectorAll('#quick-replies:not([hidden]) button').length === 3);
      assert.equal(await quickReplies(page), 'small,medium,large');
      // Announced: a polite live region holding a named group of buttons.
      assert.equal(await page.getAttribute('#quick-replies', 'aria-live'), 'polite');
      assert.equal(await page.getAttribute('#quick-replies [role="group"]', 'aria-label'), 'Suggested replies');
      await page.screenshot({ path: path.join(SHOTS, 'quick-replies.png') });
      await page.locator('#quick-replies button', { hasText: 'large' }).click();
      await waitForText(page, 'user', 'large');
      await waitForText(page, 'bot', 'And which topping?');
      await page.waitForFunction(() => document.querySelectorAll('#quick-replies:not([hidden]) button').length === 3);
      assert.equal(await quickReplies(page), 'cheese,mushrooms,pepperoni');
      const offers = await page.evaluate(() => window.__offers);
      assert.deepEqual(offers, ['small,medium,large', '', 'cheese,mushrooms,pepperoni'], 'the buttons did not go once answered');
    });

    await step('a keyboard user picks a quick reply with Shift+Tab and Enter', async () => {
      assert.equal(await page.evaluate(() => document.activeElement.id), 'composer-input');
      await page.keyboard.press('Shift+Tab');
      assert.equal(await page.evaluate(() => document.activeElement.textContent), 'pepperoni');
      await page.keyboard.press('Shift+Tab');
      assert.equal(await page.evaluate(() => document.activeElement.textContent), 'mushrooms');
      await page.keyboard.press('Enter');
      await waitForText(page, 'bot', 'One large pizza with mushrooms, coming right up!');
      await page.waitForFunction(() => document.querySelector('#quick-replies:not([hidden]) button')?.textContent === 'help');
    });

    await step('an echoed **bold** shows bold, and echoed HTML shows as text and never runs', async () => {
      markdownId = await newChat(page, 'echo');
      await send(page, 'Some **bold** and `code`');
      await page.locator('#messages > li.from-bot[data-id] .bubble strong', { hasText: 'bold' }).waitFor();
      assert.equal(await page.locator('#messages > li.from-bot[data-id] .bubble code', { hasText: 'code' }).count(), 1);
      // The user's own text stays plain.
      await waitForText(page, 'user', 'Some **bold** and `code`');
      assert.equal(await page.locator('#messages > li.from-user .bubble strong').count(), 0);
      await send(page, '<img src=x onerror=alert(1)>');
      await waitForText(page, 'bot', '<img src=x onerror=alert(1)>');
      assert.equal(await page.locator('#messages .bubble img').count(), 0, 'an <img> was built from the text');
      assert.deepEqual(dialogs, [], 'a dialog opened');
    });

    await step("a bot's raw HTML and javascript: links in Markdown never execute", async () => {
      const evil = [
        '**Release notes**, see the [docs](https://docs.example.com/confab).',
        '',
        '- a [bad link](javascript:window.__pwned=1)',
        '- <a href="javascript:window.__pwned=2">raw link</a>',
        '- <img src=x onerror="window.__pwned=3">',
        '- <script>window.__pwned=4</script>',
        '- <iframe src="javascript:window.__pwned=5"></iframe>',
        '- [data link](data:text/html;base64,PHNjcmlwdD53aW5kb3cuX19wd25lZD02PC9zY3JpcHQ+)',
        '- ![pixel](javascript:window.__pwned=7)',
        '- <svg onload="window.__pwned=8"></svg>',
        '',
        '```js',
        `const wide = '${'a line of code that scrolls sideways rather than widening the bubble '.repeat(3)}';`,
        '```',
      ].join('\n');
      await restAs(BOT_TOKEN, 'POST', `/conversations/${markdownId}/messages`, { content: evil });
      const bubble = page.locator('#messages > li.from-bot[data-id] .bubble', { hasText: 'Release notes' });
      await bubble.waitFor();
      assert.equal(await bubble.locator('strong').first().textContent(), 'Release notes');
      const docs = bubble.locator('a', { hasText: 'docs' });
      assert.equal(await docs.getAttribute('href'), 'https://docs.example.com/confab');
      assert.equal(await docs.getAttribute('target'), '_blank');
      assert.equal(await docs.getAttribute('rel'), 'noopener noreferrer');
      const built = await bubble.evaluate((node) => ({
        elements: [...node.querySelectorAll('script, iframe, img, svg, object, embed, [onerror], [onload]')].map((e) => e.outerHTML),
        hrefs: [...node.querySelectorAll('a')].map((a) => a.getAttribute('href')),
        text: node.textContent,
      }));
      assert.deepEqual(built.elements, [], 'an element that runs or loads was built');
      // The bad and the data link stay anchors, without an address.
      assert.deepEqual(built.hrefs, ['https://docs.example.com/confab', null, null], 'a link other than the web one kept its address');
      for (const shown of ['<img src=x onerror="window.__pwned=3">', '<script>window.__pwned=4</script>']) {
        assert.ok(built.text.includes(shown), `${shown} is not shown as text`);
      }
      const before = context.pages().length;
      await bubble.locator('a', { hasText: 'bad link' }).click();
      await bubble.locator('a', { hasText: 'data link' }).click();
      assert.equal(await page.evaluate(() => window.__pwned), undefined, 'the bot\'s script ran');
      assert.equal(context.pages().length, before, 'a link without an address opened a page');
      assert.deepEqual(dialogs, [], 'a dialog opened');
      const code = bubble.locator('pre');
      assert.equal(await code.evaluate((pre) => getComputedStyle(pre).overflowX), 'auto');
      assert.ok(await code.evaluate((pre) => pre.scrollWidth > pre.clientWidth), 'the code block does not scroll');
    });

    await step("a bot's image attachment shows as an image that opens full size, a file as a card", async () => {
      await restAs(BOT_TOKEN, 'POST', `/conversations/${markdownId}/messages`, {
        content: 'Here is the chart, a photo, and the data behind them.',
        attachments: [
          { type: 'image', url: `https://${IMAGE_HOST}/chart.png`, content_type: 'image/png', name: 'chart.png' },
          { type: 'link', url: `https://${IMAGE_HOST}/photos/team.jpg` },
          { type: 'file', url: `https://${IMAGE_HOST}/data.csv`, content_type: 'text/csv', name: 'data.csv', size_bytes: 2048 },
        ],
      });
      await waitForText(page, 'bot', 'Here is the chart');
      const message = page.locator('#messages > li.from-bot[data-id]', { hasText: 'Here is the chart' });
      await page.waitForFunction(() => {
        const images = [...document.querySelectorAll('#messages .attachments a.attachment-image img')];
        return images.length === 2 && images.every((image) => image.complete && image.naturalWidth === 320);
      });
      const chart = message.locator('a.attachment-image', { has: page.locator('img[alt="chart.png"]') });
      assert.equal(await chart.getAttribute('href'), `https://${IMAGE_HOST}/chart.png`);
      assert.equal(await chart.getAttribute('target'), '_blank');
      assert.equal(await chart.getAttribute('rel'), 'noopener noreferrer');
      const card = message.locator('a.attachment-file');
      assert.equal(await card.locator('.file-name').textContent(), 'data.csv');
      assert.equal(await card.locator('.file-type').textContent(), 'text/csv · 2 KB');
      await page.locator('#composer-input').fill('');
      await page.mouse.move(0, 0);
      await page.screenshot({ path: path.join(SHOTS, 'markdown-and-attachments.png') });
    });

    await step('attachments show as links', async () => {
      await page.locator(`.conversation-item[data-id="${echoId}"]`).click();
      await waitForText(page, 'bot', 'How are you today?');
      const url = `${BASE}/files/release-notes.pdf`;
      await rest(page, 'POST', `/conversations/${echoId}/messages`, {
        content: 'Here are the release notes.',
        attachments: [{ type: 'file', url, name: 'release-notes.pdf', content_type: 'application/pdf', size_bytes: 48_213 }],
      });
      const link = page.locator('#messages .attachments a', { hasText: 'release-notes.pdf' });
      await link.waitFor();
      assert.equal(await link.getAttribute('href'), url);
      assert.equal(await link.getAttribute('rel'), 'noopener noreferrer');
      await waitForText(page, 'bot', 'Here are the release notes.');
    });

    await step('the desktop screenshot is taken at 1280x800', async () => {
      await page.locator('#composer-input').fill('');
      await page.mouse.move(0, 0);
      await page.screenshot({ path: path.join(SHOTS, 'desktop-1280x800.png') });
    });

    await step('archiving moves a conversation to the archived list, and back', async () => {
      await page.locator(`.conversation-item[data-id="${streamId}"]`).click();
      await page.waitForFunction((id) => window.confabDebug.currentConversation === id, streamId);
      await page.click('#archive-button');
      await page.locator('#archived-note').waitFor();
      assert.equal(await page.locator('#composer').isHidden(), true);
      await page.waitForFunction((id) => !document.querySelector(`.conversation-item[data-id="${id}"]`), streamId);
      await page.click('#tab-archived');
      await page.locator(`.conversation-item[data-id="${streamId}"]`).waitFor();
      assert.equal((await rest(page, 'GET', `/conversations/${streamId}`)).status, 'archived');
      await page.click('#archive-button');
      await page.locator('#composer').waitFor();
      await page.waitForFunction((id) => !document.querySelector(`.conversation-item[data-id="${id}"]`), streamId);
      await page.click('#tab-active');
      await page.locator(`.conversation-item[data-id="${streamId}"]`).waitFor();
      assert.equal((await rest(page, 'GET', `/conversations/${streamId}`)).status, 'active');
    });

    await step('after a dropped socket the page reconnects by itself', async () => {
      await page.locator(`.conversation-item[data-id="${echoId}"]`).click();
      await page.waitForFunction((id) => window.confabDebug.currentConversation === id, echoId);
      const before = await page.evaluate(() => window.confabDebug.connections);
      await page.evaluate(() => window.confabDebug.dropSocket());
      await page.waitForFunction((n) => window.confabDebug.connections > n && window.confabDebug.connected, before);
      await send(page, 'Back online?');
      await waitForText(page, 'bot', 'Back online?');
      assertWholeAndOnce(await shownMessages(page), await historyOf(page, echoId));
    });

    await step('messages stored while offline show up exactly once after the resume', async () => {
      await page.evaluate(() => window.confabDebug.dropSocket({ hold: true }));
      await page.waitForFunction(() => !window.confabDebug.connected);
      await page.locator('#connection[data-state="offline"]').waitFor();
      const sent = await rest(page, 'POST', `/conversations/${echoId}/messages?wait=true`, {
        content: 'Sent through REST while the page was offline',
      });
      assert.equal(sent.replies.length, 1);
      // The page's own message goes through REST too while the socket is down.
      await send(page, 'Typed while offline');
      await page.locator('#messages li.pending .message-meta', { hasText: 'waiting for the connection' }).waitFor();
      await page.evaluate(() => window.confabDebug.reconnect());
      await waitForText(page, 'user', 'Sent through REST while the page was offline');
      await waitForText(page, 'bot', 'Typed while offline');
      await page.waitForFunction(() => !document.querySelector('#messages li.pending'));
      const history = await historyOf(page, echoId);
      await page.waitForFunction((n) => document.querySelectorAll('#messages > li.message[data-id]').length >= n, history.length);
      const shown = await shownMessages(page);
      assertWholeAndOnce(shown, history);
      for (const text of ['Sent through REST while the page was offline', 'Typed while offline']) {
        assert.equal(shown.filter((m) => m.text === text).length, 2, `"${text}" and its echo, once each`);
      }
    });

    await step('scrolling to the top pages back through a long history', async () => {
      // A guest of its own, so that its 26 sends stay within the per-user send rate.
      const guest = await newGuest();
      const started = await restAs(guest.token, 'POST', '/conversations/start', { bot_id: 'echo', title: 'A long one' });
      const id = started.conversation_id;
      for (let i = 1; i <= 26; i += 1) {
        await restAs(guest.token, 'POST', `/conversations/${id}/messages?wait=true`, { content: `Message number ${i}` });
      }
      await page.evaluate((auth) => localStorage.setItem('confab.token', JSON.stringify(auth)), guest);
      // Leave first: the same document with another hash would open the conversation
      // with the old guest's token before a reload read the new one.
      await page.goto('about:blank');
      await page.goto(`${BASE}/#${id}`);
      await ready(page);
      assert.equal((await shownMessages(page)).length, 50, 'the first page holds the newest 50');
      assert.equal(await page.locator('#load-older').isVisible(), true);
      await page.evaluate(() => {
        document.querySelector('#log-scroller').scrollTop = 0;
      });
      await page.locator('#history-start').waitFor();
      const shown = await shownMessages(page);
      assert.equal(shown.length, 52);
      assertWholeAndOnce(shown, await historyOf(page, id));
    });

    await step('deleting a conversation asks first, then removes it', async () => {
      const id = await page.evaluate(() => window.confabDebug.currentConversation);
      await page.click('#delete-button');
      await page.locator('#delete-dialog[open]').waitFor();
      await page.click('#confirm-delete');
      await page.locator('#empty-state').waitFor();
      await page.waitForFunction((gone) => !document.querySelector(`.conversation-item[data-id="${gone}"]`), id);
      const { token } = await page.evaluate(() => JSON.parse(localStorage.getItem('confab.token')));
      const response = await fetch(new URL(`/conversations/${id}`, BASE), {
        headers: { Authorization: `Bearer ${token}` },
        signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
      });
      assert.equal(response.status, 404);
    });

    await step('an expired token is replaced by a new guest token', async () => {
      await page.evaluate(() =>
        localStorage.setItem('confab.token', JSON.stringify({ token: 'forged', user_id: 'x', expires_at: '2999-01-01T00:00:00Z' })),
      );
      await page.goto(BASE);
      await ready(page);
      await page.waitForFunction(() => window.confabDebug.connected);
      const stored = await page.evaluate(() => JSON.parse(localStorage.getItem('confab.token')));
      assert.notEqual(stored.token, 'forged');
      assert.equal(await page.locator('.conversation-item').count(), 0, 'a new guest sees nobody else\'s conversations');
    });

    await step('a keyboard-only user starts a chat and sends with Tab and Enter', async () => {
      const focused = () => page.evaluate(() => document.activeElement.id || document.activeElement.className);
      await page.keyboard.press('Tab');
      assert.equal(await focused(), 'skip-link');
      await page.keyboard.press('Tab');
      assert.equal(await focused(), 'bot-select');
      await page.keyboard.press('Tab');
      assert.equal(await focused(), 'new-chat-button');
      await page.keyboard.press('Enter');
      await page.waitForFunction(() => document.activeElement?.id === 'composer-input');
      await page.keyboard.type('Typed without a mouse');
      await page.keyboard.press('Enter');
      await waitForText(page, 'user', 'Typed without a mouse');
      await page.locator('#messages > li.message.from-bot[data-id]').first().waitFor();
      await page.keyboard.press('Tab');
      assert.equal(await focused(), 'send-button');
    });

    // The forged token makes the browser log the refused requests; the page itself
    // must log nothing else.
    const unexpected = problems.filter((p) => !/401 \(Unauthorized\)/.test(p));
    assert.deepEqual(unexpected, [], 'the page logged errors');
    assert.deepEqual(dialogs, [], 'a dialog opened');
    await context.close();

    const phone = await openPage(browser, { width: 390, height: 844 });
    await step('on a 390 px wide phone the list folds into a drawer', async () => {
      const { page: p } = phone;
      await p.goto(BASE);
      await ready(p);
      assert.equal(await p.locator('#sidebar').isVisible(), false, 'the list is folded away');
      // The empty page's button opens the drawer on the bot picker.
      await p.click('#empty-start');
      await p.locator('#sidebar').waitFor();
      assert.equal(await p.evaluate(() => document.activeElement.id), 'bot-select');
      assert.equal(await p.getAttribute('#drawer-toggle', 'aria-expanded'), 'true');
      assert.equal(await p.evaluate(() => document.querySelector('#chat').inert), true, 'focus can leave the drawer');
      await p.selectOption('#bot-select', 'echo');
      await p.click('#new-chat-button');
      await p.waitForFunction(() => window.confabDebug.currentConversation);
      assert.equal(await p.getAttribute('#drawer-toggle', 'aria-expanded'), 'false');
      await send(p, 'Hi from a phone!');
      await waitForText(p, 'bot', 'Hi from a phone');
      await send(p, 'The conversation list folds into a drawer on small screens.');
      await waitForText(p, 'bot', 'folds into a drawer');
      await send(p, `\`\`\`\n${'code scrolls sideways on a phone '.repeat(4)}\n\`\`\``);
      const code = p.locator('#messages > li.from-bot[data-id] .bubble pre');
      await code.waitFor();
      assert.ok(await code.evaluate((pre) => pre.scrollWidth > pre.clientWidth), 'the code block does not scroll');
      const overflow = await p.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
      assert.equal(overflow, false, 'the page scrolls sideways');
      await p.locator('#composer-input').blur();
      await p.screenshot({ path: path.join(SHOTS, 'phone-390x844.png') });
      await p.click('#drawer-toggle');
      await p.locator('#sidebar').waitFor();
      await p.waitForFunction(() => getComputedStyle(document.querySelector('#sidebar')).transform === 'none');
      await p.screenshot({ path: path.join(SHOTS, 'phone-390x844-drawer.png') });
      await p.keyboard.press('Escape');
      assert.equal(await p.getAttribute('#drawer-toggle', 'aria-expanded'), 'false');
      assert.deepEqual(phone.problems, []);
    });
    await phone.context.close();
  } finally {
    await browser.close();
  }
}

run('e2e', RUN_TIMEOUT_MS, main, `; screenshots in ${SHOTS}`);
