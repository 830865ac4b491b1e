// One terminal in the page: xterm.js (from this server, not a CDN) over a WebSocket to a shell on one machine
// of the student's lab. The shell outlives the socket: when the socket drops (a network blip, a closed laptop)
// the page reconnects and the server replays the recent screen. Messages to the server: "0" + keys, "1" + size.
/* global WebSocket, window, ResizeObserver */
import { Terminal } from '/vendor/xterm.mjs';
import { FitAddon } from '/vendor/addon-fit.mjs';

export class TermView {
  /**
   * @param {HTMLElement} box
   * @param {{ url: string, readOnly: boolean, label: string, onStatus?: (text: string) => void, onLeave?: () => void }} opts
   */
  constructor(box, opts) {
    this.box = box;
    this.opts = opts;
    this.term = new Terminal({
      convertEol: false,
      cursorBlink: !opts.readOnly,
      disableStdin: opts.readOnly,
      fontSize: 15,
      scrollback: 3000,
      screenReaderMode: false,
    });
    this.fit = new FitAddon();
    this.term.loadAddon(this.fit);
    this.term.open(box);
    box.setAttribute('aria-label', opts.label);
    /** @type {WebSocket | undefined} */
    this.ws = undefined;
    this.closed = false;
    this.retry = 500;
    this.ctrl = false;
    this.term.onData((data) => {
      if (this.ctrl && data.length === 1 && /[a-z@[\\\]^_]/i.test(data)) {
        data = String.fromCharCode(data.toUpperCase().charCodeAt(0) & 0x1f);
        this.setCtrl(false);
      }
      this.send(data);
    });
    // F6 leaves the terminal (inside it, Tab belongs to the shell).
    this.term.attachCustomKeyEventHandler((e) => {
      if (e.type === 'keydown' && e.key === 'F6') {
        opts.onLeave?.();
        return false;
      }
      return true;
    });
    this.term.onResize(({ cols, rows }) => {
      if (this.ws?.readyState === WebSocket.OPEN && !opts.readOnly) this.ws.send(`1${JSON.stringify({ cols, rows })}`);
    });
    new ResizeObserver(() => {
      if (box.offsetParent !== null) this.fitNow();
    }).observe(box);
    this.connect();
  }

  fitNow() {
    try {
      this.fit.fit();
    } catch {
      // Not laid out yet.
    }
  }

  /** @param {boolean} on */
  setCtrl(on) {
    this.ctrl = on;
    this.onCtrl?.(on);
  }

  connect() {
    if (this.closed) return;
    this.fitNow();
    const u = new URL(this.opts.url, window.location.href);
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    u.searchParams.set('cols', String(this.term.cols));
    u.searchParams.set('rows', String(this.term.rows));
    const ws = new WebSocket(u);
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onopen = () => {
      this.retry = 500;
      this.opts.onStatus?.('connected');
    };
    ws.onmessage = (e) => {
      if (typeof e.data === 'string') {
        const msg = JSON.parse(e.data);
        if (msg.type === 'reset') this.term.reset();
        else if (msg.type === 'gone') {
          this.closed = true;
          this.term.write(`\r\n\x1b[33m${msg.message ?? 'the lab is gone'}\x1b[0m\r\n`);
          this.opts.onStatus?.('gone');
        }
        return;
      }
      this.term.write(new Uint8Array(e.data));
    };
    ws.onclose = (e) => {
      if (this.closed || e.code === 4001) return;
      this.opts.onStatus?.('reconnecting…');
      window.setTimeout(() => this.connect(), this.retry);
      this.retry = Math.min(this.retry * 2, 8000);
    };
  }

  /** @param {string} data */
  send(data) {
    if (this.opts.readOnly || this.ws?.readyState !== WebSocket.OPEN) return;
    // Pasted text in pieces the server takes (a message is at most 64 KiB).
    for (let i = 0; i < data.length; i += 8000) this.ws.send(`0${data.slice(i, i + 8000)}`);
  }

  focus() {
    this.term.focus();
  }

  copy() {
    return this.term.getSelection();
  }

  /** @param {boolean} on */
  screenReader(on) {
    this.term.options.screenReaderMode = on;
  }

  dispose() {
    this.closed = true;
    this.ws?.close();
    this.term.dispose();
  }
}
