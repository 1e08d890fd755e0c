// Loaded before Web Chat: wraps the page's WebSocket so that the test sees every socket
// Direct Line opens and every frame it receives, and can drop the live one the way a
// network would. Web Chat and directlinejs are unaware of it; they call `new WebSocket`.
(() => {
  const NativeWebSocket = window.WebSocket;
  const spy = {
    /** Every socket opened, oldest first, with its URL and frames. */
    sockets: [],
    /** The activity sets received on all sockets, in order (heartbeats left out). */
    sets: [],
    heartbeats: 0,
    /** Closes the socket currently open; Direct Line must reconnect by itself. */
    drop() {
      const live = spy.sockets.filter((s) => s.socket.readyState === NativeWebSocket.OPEN);
      if (live.length !== 1) throw new Error(`${live.length} sockets are open, expected 1`);
      live[0].socket.close();
      return spy.sockets.length;
    },
    openCount() {
      return spy.sockets.filter((s) => s.socket.readyState === NativeWebSocket.OPEN).length;
    },
  };
  class SpiedWebSocket extends NativeWebSocket {
    constructor(url, protocols) {
      super(url, protocols);
      const entry = { url: String(url), socket: this, opened: false, closed: false };
      spy.sockets.push(entry);
      this.addEventListener('open', () => { entry.opened = true; });
      this.addEventListener('close', () => { entry.closed = true; });
      this.addEventListener('message', (event) => {
        if (event.data === '') {
          spy.heartbeats += 1;
          return;
        }
        spy.sets.push(JSON.parse(event.data));
      });
    }
  }
  window.WebSocket = SpiedWebSocket;
  window.socketSpy = spy;
})();
