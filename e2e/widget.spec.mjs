// End-to-end test of confab's chat widget (`/widget.js`) on other sites, in Debian's
// headless Chromium, driven by playwright-core. `cargo xtask e2e` runs it after
// chat.spec.mjs against the same server, which it starts with
// `web.embed_origins = ["http://127.0.0.1:$CONFAB_E2E_EMBED_PORT"]`.
//
// The script serves two "shops" itself, both with the one-line snippet: one on that
// allowed port, one on a port no setting names. Every wait is bounded, and every
// request leaving 127.0.0.1 is aborted.

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS, run, step } from './harness.mjs';

const BASE = process.env.CONFAB_E2E_URL ?? 'http://127.0.0.1:8080';
const SHOTS = process.env.CONFAB_E2E_SCREENSHOTS ?? 'target/e2e';
const CHROMIUM = process.env.CONFAB_E2E_CHROMIUM ?? '/usr/bin/chromium';
const EMBED_PORT = Number(process.env.CONFAB_E2E_EMBED_PORT ?? 8081);
const STEP_TIMEOUT_MS = 15_000;
const RUN_TIMEOUT_MS = 120_000;

// ---------------------------------------------------------------------------
// The shops: a page with the snippet at `/`, the same page without it at `/plain`.
// ---------------------------------------------------------------------------

const SNIPPET = `<script src="${BASE}/widget.js" data-bot="echo" data-title="Help" data-color="#0f766e" async></script>`;

function shopPage(name, withWidget) {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>${name}</title></head>
<body>
  <main>
    <h1>${name}</h1>
    <p>Hand-made teapots, shipped anywhere. Questions? Ask in the chat.</p>
  </main>
  ${withWidget ? SNIPPET : ''}
</body>
</html>`;
}

/** Serves the shop called `name` on 127.0.0.1:`port` (0 for any free port). */
async function serveShop(name, port) {
  const server = http.createServer((request, response) => {
    const withWidget = new URL(request.url, 'http://127.0.0.1').pathname !== '/plain';
    response.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
    response.end(shopPage(name, withWidget));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return { server, url: `http://127.0.0.1:${server.address().port}` };
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

async function openPage(browser) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 });
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === '127.0.0.1') return route.continue();
    return route.abort();
  });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const consoleErrors = [];
  page.on('pageerror', (error) => consoleErrors.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  return { context, page, consoleErrors };
}

const LAUNCHER = '[data-confab-widget] button.launcher';

/** The chat's frame inside the widget, once its element is there. */
async function chatFrame(page) {
  const handle = await page.locator('[data-confab-widget] iframe').elementHandle();
  return handle.contentFrame();
}

async function chatMessages(frame) {
  return frame.$$eval('#messages > li.message[data-id]', (items) =>
    items.map((item) => `${item.classList.contains('from-user') ? 'user' : 'bot'}:${item.querySelector('.bubble').textContent}`),
  );
}

// ---------------------------------------------------------------------------
// The scenario
// ---------------------------------------------------------------------------

async function main() {
  await mkdir(SHOTS, { recursive: true });
  const allowed = await serveShop('Teapot shop', EMBED_PORT);
  const refused = await serveShop('Copycat shop', 0);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: STEP_TIMEOUT_MS });
  try {
    const { context, page, consoleErrors } = await openPage(browser);
    let conversationId;

    await step('the snippet adds one element to the shop and no global name', async () => {
      await page.goto(`${allowed.url}/plain`);
      const bare = await page.evaluate(() => ({
        globals: Object.getOwnPropertyNames(window),
        elements: document.body.children.length,
      }));
      await page.goto(allowed.url);
      await page.locator(LAUNCHER).waitFor();
      const withWidget = await page.evaluate(() => ({
        globals: Object.getOwnPropertyNames(window),
        elements: [...document.body.children].map((e) => e.tagName.toLowerCase() + (e.dataset.confabWidget ? '[data-confab-widget]' : '')),
      }));
      assert.deepEqual(withWidget.globals.filter((name) => !bare.globals.includes(name)), [], 'new globals');
      // The shop's own <main> and <script>, and the widget's one element.
      assert.equal(withWidget.elements.length, bare.elements + 2, `${withWidget.elements}`);
      assert.equal(withWidget.elements.at(-1), 'div[data-confab-widget]');
      assert.equal(await page.getAttribute(LAUNCHER, 'aria-expanded'), 'false');
      assert.equal(await page.getAttribute(LAUNCHER, 'aria-label'), 'Help');
      // Nothing is loaded from the chat server but the script until the bubble opens.
      assert.equal(await page.locator('[data-confab-widget] iframe').count(), 0);
    });

    await step('the bubble opens the chat with the echo bot, which answers', async () => {
      await page.click(LAUNCHER);
      assert.equal(await page.getAttribute(LAUNCHER, 'aria-expanded'), 'true');
      const frame = await chatFrame(page);
      await frame.waitForSelector('html[data-ready="true"]');
      assert.ok(frame.url().startsWith(`${BASE}/?embed=1&bot=echo`), frame.url());
      await frame.waitForFunction(() => window.confabDebug.connected && window.confabDebug.currentConversation);
      conversationId = await frame.evaluate(() => window.confabDebug.currentConversation);
      // The compact layout: no list, no bot picker.
      assert.equal(await frame.locator('#sidebar').isVisible(), false);
      assert.equal(await frame.locator('#bot-select').isVisible(), false);
      await frame.locator('#composer-input').fill('Do you ship teapots to Lisbon?');
      await frame.locator('#composer-input').press('Enter');
      await frame.locator('#messages > li.from-bot[data-id] .bubble', { hasText: 'Do you ship teapots to Lisbon?' }).waitFor();
      await page.mouse.move(0, 0);
      await page.screenshot({ path: path.join(SHOTS, 'widget-open.png') });
    });

    await step('after a reload of the shop the widget shows the same conversation', async () => {
      await page.reload();
      await page.click(LAUNCHER);
      const frame = await chatFrame(page);
      await frame.waitForSelector('html[data-ready="true"]');
      assert.equal(await frame.evaluate(() => window.confabDebug.currentConversation), conversationId);
      await frame.locator('#messages > li.from-bot[data-id] .bubble', { hasText: 'Lisbon' }).waitFor();
      assert.deepEqual(await chatMessages(frame), [
        'user:Do you ship teapots to Lisbon?',
        'bot:Do you ship teapots to Lisbon?',
      ]);
      await frame.locator('#composer-input').fill('Still here after the reload');
      await frame.locator('#composer-input').press('Enter');
      await frame.locator('#messages > li.from-bot[data-id] .bubble', { hasText: 'Still here after the reload' }).waitFor();
      await page.mouse.move(0, 0);
      await page.screenshot({ path: path.join(SHOTS, 'widget-after-reload.png') });
      // The close button folds the panel back into the bubble.
      await page.click('[data-confab-widget] button.close');
      assert.equal(await page.locator('[data-confab-widget] iframe').isVisible(), false);
      assert.equal(await page.getAttribute(LAUNCHER, 'aria-expanded'), 'false');
      assert.deepEqual(consoleErrors, [], 'the shop or the chat logged errors');
    });
    await context.close();

    const copycat = await openPage(browser);
    await step('a site that is not in web.embed_origins cannot frame the chat', async () => {
      const { page: p, consoleErrors: errors } = copycat;
      await p.goto(refused.url);
      // Chromium refuses the frame and says why in the embedding page's console.
      const refusal = p.waitForEvent('console', {
        predicate: (message) => message.text().includes('frame-ancestors'),
        timeout: STEP_TIMEOUT_MS,
      });
      await p.click(LAUNCHER);
      await refusal;
      const frame = await chatFrame(p);
      assert.ok(
        errors.some((e) => e.includes('frame-ancestors') && e.includes(allowed.url)),
        `no frame-ancestors refusal was logged: ${errors}`,
      );
      const loaded = await frame
        .evaluate(() => document.documentElement.dataset.ready === 'true' || typeof window.confabDebug === 'object')
        .catch(() => false);
      assert.equal(loaded, false, 'the chat page ran inside the refused frame');
      await p.mouse.move(0, 0);
      await p.screenshot({ path: path.join(SHOTS, 'widget-refused.png') });
    });
    await copycat.context.close();
  } finally {
    await browser.close();
    allowed.server.close();
    refused.server.close();
  }
}

run('e2e: widget', RUN_TIMEOUT_MS, main, `; screenshots in ${SHOTS}`);
