// Microsoft's BotFramework Web Chat, its bundle unmodified from the botframework-webchat
// npm package, talking to confab's Direct Line 3.0 adapter in Debian's headless
// Chromium. A tiny site on another 127.0.0.1 port plays the website that embeds the
// chat: it serves e2e/directline/ and Web Chat's dist/webchat.js, and its backend turns
// a Direct Line secret into a token, so the secret never reaches the page. The page is
// cross-origin to confab, as on a real site. `cargo xtask e2e` starts a server with
// Direct Line secrets for the echo, slow and demo bots and runs this with plain node:
//
//   CONFAB_E2E_URL=http://127.0.0.1:PORT CONFAB_E2E_SCREENSHOTS=target/e2e \
//   DL_SECRET_ECHO=… DL_SECRET_SLOW=… DL_SECRET_DEMO=… node e2e/directline.spec.mjs
//
// Each step names what a user does and what they must see; the first failure stops
// the run with that step's name. Every wait is bounded, and every request leaving
// 127.0.0.1 is aborted.

import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS, run, step } from './harness.mjs';

const BASE = process.env.CONFAB_E2E_URL ?? 'http://127.0.0.1:8080';
const DOMAIN = `${BASE}/v3/directline`;
const SHOTS = process.env.CONFAB_E2E_SCREENSHOTS ?? 'target/e2e';
const CHROMIUM = process.env.CONFAB_E2E_CHROMIUM ?? '/usr/bin/chromium';
/** The Direct Line secret of each bot, held by the site's backend only. */
const SECRETS = {
  echo: process.env.DL_SECRET_ECHO,
  slow: process.env.DL_SECRET_SLOW,
  demo: process.env.DL_SECRET_DEMO,
};
const STEP_TIMEOUT_MS = 20_000;
// Web Chat's directlinejs reopens a dropped socket 3 to 15 s later (its retry delay).
const RECONNECT_TIMEOUT_MS = 30_000;
const RUN_TIMEOUT_MS = 240_000;

const HERE = path.dirname(fileURLToPath(import.meta.url));
const WEBCHAT_PACKAGE = path.join(HERE, 'node_modules', 'botframework-webchat');
const WEBCHAT_BUNDLE = path.join(WEBCHAT_PACKAGE, 'dist', 'webchat.js');

assert.ok(existsSync(WEBCHAT_BUNDLE), `${WEBCHAT_BUNDLE} is missing: run npm ci in e2e/`);
for (const [bot, secret] of Object.entries(SECRETS)) {
  assert.ok(secret, `DL_SECRET_${bot.toUpperCase()} must hold the ${bot} bot's Direct Line secret`);
}
assert.equal(new URL(BASE).hostname, '127.0.0.1', 'the server under test must be on 127.0.0.1');

// ---------------------------------------------------------------------------
// The site: static files, Web Chat's bundle, and a backend that hands out tokens
// ---------------------------------------------------------------------------

const STATIC = {
  '/': [path.join(HERE, 'directline', 'index.html'), 'text/html; charset=utf-8'],
  '/site.js': [path.join(HERE, 'directline', 'site.js'), 'text/javascript; charset=utf-8'],
  '/socket-spy.js': [path.join(HERE, 'directline', 'socket-spy.js'), 'text/javascript; charset=utf-8'],
  '/webchat.js': [WEBCHAT_BUNDLE, 'text/javascript; charset=utf-8'],
};

/** `POST /tokens/generate` with a bot's secret, as the site's backend calls it. */
async function generateToken(bot, userId) {
  const response = await fetch(`${DOMAIN}/tokens/generate`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${SECRETS[bot]}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ user: { id: userId } }),
    signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
  });
  const text = await response.text();
  assert.equal(response.status, 200, `POST /tokens/generate for ${bot} answered ${response.status}: ${text}`);
  const grant = JSON.parse(text);
  assert.equal(typeof grant.token, 'string', `no token in ${text}`);
  assert.equal(typeof grant.conversationId, 'string', `no conversationId in ${text}`);
  return grant;
}

/** Starts the site on a free port of 127.0.0.1; `issued` lists the tokens it handed out. */
async function startSite() {
  const issued = [];
  const server = http.createServer(async (request, response) => {
    try {
      const route = new URL(request.url, 'http://127.0.0.1').pathname;
      if (request.method === 'GET' && STATIC[route]) {
        const [file, type] = STATIC[route];
        response.writeHead(200, { 'Content-Type': type, 'Cache-Control': 'no-store' });
        createReadStream(file).pipe(response);
        return;
      }
      if (request.method === 'POST' && route === '/api/directline/token') {
        let body = '';
        for await (const chunk of request) body += chunk;
        const { bot } = JSON.parse(body);
        assert.ok(SECRETS[bot], `the site has no secret for bot ${bot}`);
        // Direct Line reserves `dl_` ids for users the token vouches for.
        const userId = `dl_site_${randomUUID().slice(0, 8)}`;
        const grant = await generateToken(bot, userId);
        issued.push({ bot, userId, ...grant });
        response.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
        response.end(JSON.stringify({ domain: DOMAIN, token: grant.token, conversationId: grant.conversationId, userId }));
        return;
      }
      response.writeHead(404).end();
    } catch (error) {
      console.error(`site: ${request.method} ${request.url} failed: ${error.message}`);
      response.writeHead(500).end();
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${server.address().port}`;
  return { server, origin, issued };
}

// ---------------------------------------------------------------------------
// The page
// ---------------------------------------------------------------------------

async function openPage(browser, site) {
  const context = await browser.newContext({ viewport: { width: 900, height: 800 }, deviceScaleFactor: 1 });
  const aborted = [];
  const secretsSent = [];
  const secrets = Object.values(SECRETS);
  // Nothing may leave the machine: the site and confab are both on 127.0.0.1.
  await context.route('**/*', (route) => {
    const request = route.request();
    const url = new URL(request.url());
    const authorization = request.headers().authorization ?? '';
    if (secrets.some((secret) => authorization.includes(secret) || request.url().includes(secret))) {
      secretsSent.push(request.url());
    }
    if (url.hostname === '127.0.0.1' || url.protocol === 'data:' || url.protocol === 'blob:') return route.continue();
    aborted.push(request.url());
    return route.abort();
  });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const problems = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console error: ${message.text()} at ${message.location().url}`);
  });
  const requests = [];
  page.on('request', (request) => requests.push(`${request.method()} ${request.url()}`));
  return { context, page, problems, aborted, secretsSent, requests, site };
}

/** Opens the site's page with Web Chat on `bot` and waits until Direct Line is Online. */
async function openChat(tab, bot) {
  const { page, site } = tab;
  await page.goto(`${site.origin}/?bot=${bot}`);
  await page.waitForFunction(() => window.site?.ready || window.site?.error);
  const error = await page.evaluate(() => window.site.error);
  assert.equal(error, undefined, `the site's script failed: ${error}`);
  // directlinejs's ConnectionStatus.Online is 2.
  await page.waitForFunction(() => window.site.statuses.includes(2));
  await sendBox(page).waitFor();
  return page.evaluate(() => ({ conversationId: window.site.conversationId, userId: window.site.userId }));
}

function sendBox(page) {
  return page.locator('.webchat__send-box-text-box__input');
}

async function send(page, text) {
  await sendBox(page).fill(text);
  await sendBox(page).press('Enter');
}

/** `text` as a pattern that also matches the typographic apostrophe Web Chat's markdown shows. */
function shownAs(text) {
  return new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replaceAll("'", "['\u2019]"));
}

/** The bubble showing `text` from the user (`user`) or from the bot (`bot`). */
function bubble(page, who, text) {
  const side = who === 'user' ? '.webchat__bubble--from-user' : '.webchat__bubble:not(.webchat__bubble--from-user)';
  return page.locator(`.webchat__basic-transcript__activity ${side} .webchat__text-content`, { hasText: shownAs(text) });
}

/** Waits until Web Chat shows the user's `text`, sent (the server echoed it back), and the bot's `reply`. */
async function exchange(page, text, reply = text) {
  await page.waitForFunction(
    (t) => window.site.activities().some((a) => a.role === 'user' && a.text === t && a.id && a.sendStatus === 'sent'),
    text,
  );
  await bubble(page, 'user', text).first().waitFor();
  await bubble(page, 'bot', reply).first().waitFor();
}

/** What the transcript shows, in order: who and what of each activity row. */
async function transcript(page) {
  return page.$$eval('.webchat__basic-transcript__activity', (rows) =>
    rows.map((row) => {
      const bubble = row.querySelector('.webchat__bubble');
      const who = bubble?.classList.contains('webchat__bubble--from-user') ? 'user' : 'bot';
      const text = row.querySelector('.webchat__text-content')?.textContent.trim() ?? '';
      return `${who}: ${text.replaceAll('\u2019', "'")}`;
    }),
  );
}

/** Every message the server holds for the conversation, oldest first, through the DL REST API. */
async function serverMessages(token, conversationId) {
  const response = await fetch(`${DOMAIN}/conversations/${conversationId}/activities?watermark=`, {
    headers: { Authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
  });
  const text = await response.text();
  assert.equal(response.status, 200, `GET /activities answered ${response.status}: ${text}`);
  return JSON.parse(text).activities.filter((a) => a.type === 'message');
}

async function screenshot(page, name) {
  await page.mouse.move(0, 0);
  await page.screenshot({ path: path.join(SHOTS, `directline-${name}.png`) });
}

// ---------------------------------------------------------------------------
// The scenario
// ---------------------------------------------------------------------------

async function main() {
  await mkdir(SHOTS, { recursive: true });
  const site = await startSite();
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: STEP_TIMEOUT_MS });
  const tabs = [];
  const tab = async () => {
    const opened = await openPage(browser, site);
    tabs.push(opened);
    return opened;
  };
  try {
    let echo;
    let echoChat;

    await step('the site serves Microsoft\'s Web Chat bundle, unmodified, from another origin', async () => {
      const served = Buffer.from(await (await fetch(`${site.origin}/webchat.js`)).arrayBuffer());
      const packaged = await readFile(WEBCHAT_BUNDLE);
      const digest = (bytes) => createHash('sha256').update(bytes).digest('hex');
      assert.equal(digest(served), digest(packaged), 'the served bundle differs from the npm package\'s');
      const { version } = JSON.parse(await readFile(path.join(WEBCHAT_PACKAGE, 'package.json'), 'utf8'));
      assert.notEqual(new URL(site.origin).port, new URL(BASE).port, 'the site must be another origin');
      console.log(`      botframework-webchat ${version}, ${packaged.length} bytes, site ${site.origin}, confab ${BASE}`);
    });

    await step('Web Chat connects to confab with the token the site fetched', async () => {
      echo = await tab();
      echoChat = await openChat(echo, 'echo');
      const { page } = echo;
      // The bundle names itself in a meta tag; the site loaded the full bundle of the package.
      const bundle = await page.locator('meta[name="botframework-webchat:bundle:version"]').getAttribute('content');
      const { version } = JSON.parse(await readFile(path.join(WEBCHAT_PACKAGE, 'package.json'), 'utf8'));
      assert.equal(bundle, version, 'the page runs another Web Chat than the npm package\'s');
      const issued = site.issued.at(-1);
      assert.equal(echoChat.conversationId, issued.conversationId);
      // directlinejs asked confab for the conversation of its token (POST /conversations).
      assert.ok(
        echo.requests.some((r) => r === `POST ${DOMAIN}/conversations`),
        `no POST /conversations among ${echo.requests.join(', ')}`,
      );
      await page.waitForFunction(() => window.socketSpy.openCount() === 1);
      // confab takes no uploads; the page hides the button.
      assert.equal(await page.locator('.webchat__upload-button').count(), 0, 'the upload button shows');
    });

    await step('the user types and sees the echo reply', async () => {
      const { page } = echo;
      await send(page, 'Hello from Web Chat!');
      await exchange(page, 'Hello from Web Chat!');
      await send(page, 'Direct Line works.');
      await exchange(page, 'Direct Line works.');
      assert.deepEqual(await transcript(page), [
        'user: Hello from Web Chat!',
        'bot: Hello from Web Chat!',
        'user: Direct Line works.',
        'bot: Direct Line works.',
      ]);
      await screenshot(page, 'echo');
    });

    await step('with the slow bot the typing indicator shows, then the reply', async () => {
      const slow = await tab();
      const slowChat = await openChat(slow, 'slow');
      const { page } = slow;
      const words = 'typing shows while the slow bot works';
      await send(page, words);
      await page.locator('.webchat__typing-indicator').first().waitFor({ state: 'attached' });
      await screenshot(page, 'typing');
      await exchange(page, words);
      const incoming = await page.evaluate(() => window.site.incoming);
      const typing = incoming.filter((a) => a.type === 'typing');
      assert.ok(typing.length > 0, 'no typing activity reached Web Chat');
      // Web Chat ends a sender's typing when a message from the same from.id arrives.
      const reply = incoming.find((a) => a.type === 'message' && a.from !== slowChat.userId);
      assert.deepEqual([...new Set(typing.map((a) => a.from))], [reply.from], 'the bot types under another id than it replies with');
      await page.locator('.webchat__typing-indicator').waitFor({ state: 'detached' });
      await screenshot(page, 'slow-reply');
    });

    await step('the demo bot greets, offers suggested actions, and answers a click on one', async () => {
      const demo = await tab();
      await openChat(demo, 'demo');
      const { page } = demo;
      // The script bot greets in answer to a first message that matches none of its
      // rules (docs/bots.md); confab sends no conversationUpdate to start it.
      await send(page, 'Hello');
      await exchange(page, 'Hello', 'Hi! I am confab\'s demo bot');
      await send(page, 'I\'d like a pizza');
      await exchange(page, 'I\'d like a pizza', 'What size would you like?');
      const actions = page.locator('.webchat__suggested-action');
      await actions.first().waitFor();
      assert.deepEqual(
        (await actions.allTextContents()).map((t) => t.trim()),
        ['small', 'medium', 'large'],
      );
      await screenshot(page, 'suggested-actions');
      await actions.filter({ hasText: 'large' }).click();
      await exchange(page, 'large', 'And which topping?');
      await screenshot(page, 'suggested-action-answered');
    });

    await step('after a forced reconnect nothing is missing or doubled', async () => {
      const { page } = echo;
      const issued = site.issued.find((grant) => grant.conversationId === echoChat.conversationId);
      const socketsBefore = await page.evaluate(() => window.socketSpy.drop());
      await page.waitForFunction(() => window.socketSpy.openCount() === 0);
      // While no socket is open: the site's backend posts through the Direct Line REST
      // API with the page's token, and the user types; only the reconnect can bring
      // their echoes.
      const posted = await fetch(`${DOMAIN}/conversations/${issued.conversationId}/activities`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${issued.token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ type: 'message', from: { id: issued.userId, role: 'user' }, text: 'Posted while the socket was down' }),
        signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
      });
      assert.equal(posted.status, 200, `POST /activities answered ${posted.status}: ${await posted.clone().text()}`);
      await send(page, 'Typed while the socket was down');
      assert.equal(
        await page.evaluate(() => window.socketSpy.sockets.length),
        socketsBefore,
        'the socket came back before the messages were sent',
      );
      await page.waitForFunction((n) => window.socketSpy.sockets.length > n && window.socketSpy.openCount() === 1, socketsBefore, {
        timeout: RECONNECT_TIMEOUT_MS,
      });
      // directlinejs fetched a fresh streamUrl for the conversation at its watermark.
      assert.ok(
        echo.requests.some((r) => r.startsWith(`GET ${DOMAIN}/conversations/${issued.conversationId}?watermark=`)),
        `no GET /conversations/{id}?watermark= among ${echo.requests.join(', ')}`,
      );
      await exchange(page, 'Typed while the socket was down');
      await bubble(page, 'bot', 'Posted while the socket was down').first().waitFor();
      // A marker after the reconnect: anything resent would arrive before its echo.
      await send(page, 'After the reconnect');
      await exchange(page, 'After the reconnect');
      await screenshot(page, 'after-reconnect');

      const stored = await serverMessages(issued.token, issued.conversationId);
      const shown = await transcript(page);
      assert.deepEqual(
        shown,
        stored.map((a) => `${a.from.role}: ${a.text}`),
        'the transcript is not the conversation the server holds',
      );
      for (const text of ['Posted while the socket was down', 'Typed while the socket was down']) {
        assert.deepEqual(shown.filter((line) => line.endsWith(`: ${text}`)), [`user: ${text}`, `bot: ${text}`], text);
      }
      const inStore = await page.evaluate(() => window.site.activities().filter((a) => a.type === 'message').map((a) => a.id));
      assert.equal(new Set(inStore).size, inStore.length, `an activity id is in the transcript twice: ${inStore}`);
      assert.deepEqual(inStore, stored.map((a) => a.id), 'Web Chat\'s activities are not the server\'s');
      // And on the wire: every message activity arrived on exactly one socket, once.
      const received = await page.evaluate(() =>
        window.socketSpy.sets.flatMap((set) => set.activities.filter((a) => a.type === 'message').map((a) => a.id)),
      );
      const doubled = received.filter((id, index) => received.indexOf(id) !== index);
      assert.deepEqual(doubled, [], 'the server sent an activity twice');
      assert.deepEqual([...received].sort(), stored.map((a) => a.id).sort(), 'the sockets did not bring every message');
    });

    await step('no request left 127.0.0.1, no secret reached the page, and the page logged no errors', async () => {
      const aborted = tabs.flatMap((t) => t.aborted);
      assert.deepEqual(aborted, [], 'requests to other hosts were made (and aborted)');
      assert.deepEqual(tabs.flatMap((t) => t.secretsSent), [], 'a Direct Line secret was sent from the page');
      assert.deepEqual(tabs.flatMap((t) => t.problems), [], 'the page logged errors');
    });
  } catch (error) {
    // What each page showed and was handed when the step failed, for the report.
    for (const [index, t] of tabs.entries()) {
      await t.page.screenshot({ path: path.join(SHOTS, `directline-failed-${index + 1}.png`) }).catch(() => {});
      const seen = await t.page.evaluate(() => window.site?.incoming).catch(() => undefined);
      console.error(`page ${index + 1} (${t.page.url()}) was handed: ${JSON.stringify(seen)}`);
      if (t.problems.length > 0) console.error(`page ${index + 1} logged: ${t.problems.join('\n')}`);
    }
    throw error;
  } finally {
    for (const t of tabs) await t.context.close().catch(() => {});
    await browser.close();
    site.server.closeAllConnections();
    site.server.close();
  }
}

run('directline e2e', RUN_TIMEOUT_MS, main, `; screenshots in ${SHOTS}`);
