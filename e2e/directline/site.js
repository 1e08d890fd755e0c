// The site's own script, as the Web Chat samples write it: ask the site's backend for a
// Direct Line token (the backend holds the secret; the page never sees it), then render
// Web Chat against confab. The bot is chosen by `?bot=`. What the test reads is kept
// on `window.site`.
(async () => {
  const bot = new URLSearchParams(window.location.search).get('bot') || 'echo';
  const site = { bot, statuses: [], incoming: [], ready: false };
  window.site = site;
  try {
    const response = await fetch('/api/directline/token', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ bot }),
    });
    if (!response.ok) throw new Error(`the token endpoint answered ${response.status}`);
    const { domain, token, conversationId, userId } = await response.json();
    Object.assign(site, { domain, conversationId, userId });

    const directLine = window.WebChat.createDirectLine({ domain, token });
    directLine.connectionStatus$.subscribe((status) => site.statuses.push(status));
    // Every activity Web Chat is handed, in order: what "shown once" is checked against.
    const store = window.WebChat.createStore({}, () => (next) => (action) => {
      if (action.type === 'DIRECT_LINE/INCOMING_ACTIVITY') {
        const { activity } = action.payload;
        site.incoming.push({ id: activity.id, type: activity.type, from: activity.from && activity.from.id, text: activity.text });
      }
      return next(action);
    });
    site.activities = () =>
      store.getState().activities.map(({ id, type, text, from, channelData }) => ({
        id,
        type,
        text,
        role: from && from.role,
        sendStatus: channelData && channelData['webchat:send-status'],
      }));
    window.WebChat.renderWebChat(
      {
        directLine,
        store,
        locale: 'en-US',
        // confab takes no uploads (POST /upload answers 400), so the button is hidden.
        styleOptions: { hideUploadButton: true },
      },
      document.getElementById('webchat'),
    );
    site.ready = true;
  } catch (error) {
    site.error = String(error && error.stack ? error.stack : error);
    throw error;
  }
})();
