// confab's chat widget. One line on any site puts a chat bubble in a corner of its
// pages; the bubble opens the chat with one bot, in a frame of this server's page:
//
//   <script src="https://chat.example.com/widget.js" data-bot="support"
//           data-title="Help" data-color="#4f46e5" async></script>
//
// The host page gets one element, `<div data-confab-widget>`, whose shadow root holds
// the bubble, the panel and their styles, and no global name: everything lives in
// this function. The conversation lives in the frame, on this server's origin, so it
// outlasts the host's page loads. The server lets only the sites of
// `web.embed_origins` frame the page. docs/web.md lists the options.

(() => {
  const script = document.currentScript;
  // Only a classic <script src> says where it came from; anything else cannot work.
  if (!script || !script.src) return;
  const server = new URL(script.src).origin;
  const data = script.dataset;
  const options = {
    bot: data.bot,
    title: data.title || 'Chat',
    color: data.color && CSS.supports('color', data.color) ? data.color : '#4f46e5',
    position: data.position === 'left' ? 'left' : 'right',
    open: data.open === 'true',
  };
  if (!options.bot) {
    console.error('confab widget: the <script> needs data-bot="<bot id>"');
    return;
  }

  const STYLE = `
    :host { all: initial; position: fixed; bottom: 20px; z-index: 2147483000;
      font: 15px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
    :host([data-position="right"]) { right: 20px; }
    :host([data-position="left"]) { left: 20px; }
    .launcher { width: 56px; height: 56px; border-radius: 50%; border: 0; cursor: pointer;
      display: grid; place-items: center; color: var(--confab-text, #fff); background: var(--confab-color);
      box-shadow: 0 6px 20px rgb(0 0 0 / 25%); transition: transform .15s; }
    .launcher:hover { transform: scale(1.05); }
    .launcher:focus-visible, .close:focus-visible { outline: 3px solid #2563eb; outline-offset: 3px; }
    .launcher svg { width: 28px; height: 28px; }
    .launcher .when-open, .launcher[aria-expanded="true"] .when-closed { display: none; }
    .launcher[aria-expanded="true"] .when-open { display: block; }
    .panel { position: absolute; bottom: 72px; width: min(380px, calc(100vw - 40px));
      height: min(600px, calc(100vh - 112px)); display: flex; flex-direction: column;
      border-radius: 16px; overflow: hidden; background: #fff;
      box-shadow: 0 16px 48px rgb(0 0 0 / 28%); }
    :host([data-position="right"]) .panel { right: 0; }
    :host([data-position="left"]) .panel { left: 0; }
    .panel[hidden] { display: none; }
    .header { flex: none; display: flex; align-items: center; gap: 8px; padding: 10px 10px 10px 16px;
      color: var(--confab-text, #fff); background: var(--confab-color); }
    .header h2 { flex: 1; margin: 0; font-size: 16px; font-weight: 600;
      overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
    .close { width: 32px; height: 32px; border: 0; border-radius: 8px; cursor: pointer;
      color: inherit; background: transparent; display: grid; place-items: center; }
    .close:hover { background: rgb(255 255 255 / 18%); }
    iframe { flex: 1; width: 100%; border: 0; background: #fff; }
    @media (max-width: 480px) {
      .panel { position: fixed; inset: 0; width: auto; height: auto; border-radius: 0; }
    }
    @media (prefers-reduced-motion: reduce) { .launcher { transition: none; } }
  `;

  const host = document.createElement('div');
  host.dataset.confabWidget = options.bot;
  host.dataset.position = options.position;
  host.style.setProperty('--confab-color', options.color);
  const root = host.attachShadow({ mode: 'open' });
  if ('adoptedStyleSheets' in root) {
    // A constructed sheet is not inline style: a host page whose CSP forbids inline
    // styles still shows the widget as designed.
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(STYLE);
    root.adoptedStyleSheets = [sheet];
  } else {
    const style = document.createElement('style');
    style.textContent = STYLE;
    root.append(style);
  }

  const svg = (className, d) => {
    const ns = 'http://www.w3.org/2000/svg';
    const icon = document.createElementNS(ns, 'svg');
    icon.setAttribute('viewBox', '0 0 24 24');
    icon.setAttribute('aria-hidden', 'true');
    icon.setAttribute('class', className);
    const path = document.createElementNS(ns, 'path');
    path.setAttribute('d', d);
    path.setAttribute('fill', 'none');
    path.setAttribute('stroke', 'currentColor');
    path.setAttribute('stroke-width', '2');
    path.setAttribute('stroke-linecap', 'round');
    path.setAttribute('stroke-linejoin', 'round');
    icon.append(path);
    return icon;
  };
  const BUBBLE = 'M21 12a8 8 0 0 1-11.6 7.1L4 20l1-4.6A8 8 0 1 1 21 12z';
  const CROSS = 'M6 6l12 12M18 6L6 18';

  const launcher = document.createElement('button');
  launcher.type = 'button';
  launcher.className = 'launcher';
  launcher.setAttribute('aria-label', options.title);
  launcher.setAttribute('aria-expanded', 'false');
  launcher.setAttribute('aria-controls', 'panel');
  launcher.append(svg('when-closed', BUBBLE), svg('when-open', CROSS));

  const panel = document.createElement('section');
  panel.className = 'panel';
  panel.id = 'panel';
  panel.hidden = true;
  panel.setAttribute('aria-label', options.title);
  const header = document.createElement('div');
  header.className = 'header';
  const heading = document.createElement('h2');
  heading.textContent = options.title;
  const close = document.createElement('button');
  close.type = 'button';
  close.className = 'close';
  close.setAttribute('aria-label', `Close ${options.title}`);
  close.append(svg('', CROSS));
  header.append(heading, close);
  panel.append(header);

  let frame = null;

  function open() {
    if (!frame) {
      // Loaded at the first opening only: a visitor who never opens the chat costs
      // the server nothing, not even a guest token.
      const address = new URL('/', server);
      address.searchParams.set('embed', '1');
      address.searchParams.set('bot', options.bot);
      address.searchParams.set('title', options.title);
      address.searchParams.set('color', options.color);
      frame = document.createElement('iframe');
      frame.title = options.title;
      frame.src = address.href;
      panel.append(frame);
    }
    panel.hidden = false;
    launcher.setAttribute('aria-expanded', 'true');
    frame.focus();
  }

  function shut() {
    panel.hidden = true;
    launcher.setAttribute('aria-expanded', 'false');
    launcher.focus();
  }

  launcher.addEventListener('click', () => (panel.hidden ? open() : shut()));
  close.addEventListener('click', shut);
  panel.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') shut();
  });

  root.append(panel, launcher);

  /** Dark text on a light `data-color`, white on a dark one, as the chat itself does. */
  function pickTextColor() {
    const probe = document.createElement('span');
    probe.style.color = options.color;
    root.append(probe);
    const [r, g, b] = getComputedStyle(probe).color.match(/[\d.]+/g).map(Number);
    probe.remove();
    const light = 0.2126 * r + 0.7152 * g + 0.0722 * b > 160;
    host.style.setProperty('--confab-text', light ? '#111827' : '#ffffff');
  }

  const place = () => {
    document.body.append(host);
    pickTextColor();
    if (options.open) open();
  };
  if (document.body) place();
  else document.addEventListener('DOMContentLoaded', place, { once: true });
})();
