// A small CLASP session over the browser's WebSocket, using the official @clasp-to/core codec
// for every frame. Its own session (rather than the library's `Clasp` class) because the
// console needs what that class drops: revisions, the writer and timestamp in SNAPSHOT rows,
// the signal type of each PUBLISH, and ERRORs by address.
import { PROTOCOL_VERSION, QoS, WS_SUBPROTOCOL, decode, encode } from '@clasp-to/core';
import type { Message, Value } from '@clasp-to/core';

/** Updates per second per address the console asks for. */
export const MAX_RATE = 30;

export type Signal = 'param' | 'event' | 'stream' | 'gesture' | 'timeline';

/** What the session reports to the console. */
export interface Handlers {
  /** A param value: from a SET broadcast or a SNAPSHOT row (with writer and time). */
  param(address: string, value: Value, revision: number | undefined, writer?: string, timestampUs?: number): void;
  /** An event, stream sample, gesture or timeline. */
  publish(address: string, signal: Signal, value: Value | undefined, samples?: number[]): void;
  /** A router ERROR. */
  error(code: number, message: string, address?: string): void;
  /** A new session began (WELCOME): revisions seen before may have restarted with the relay. */
  welcome(): void;
  /** Connection state for the header. */
  state(state: 'connecting' | 'open' | 'closed', detail: string): void;
}

export class Session {
  private ws: WebSocket | null = null;
  private retry: number | undefined;
  private backoff = 500;
  private closedByUser = false;
  /** The relay's id for this session (WELCOME). */
  id = '';

  constructor(
    private readonly url: string,
    private readonly token: string,
    private readonly handlers: Handlers,
  ) {}

  open(): void {
    this.closedByUser = false;
    this.handlers.state('connecting', this.url);
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.url, WS_SUBPROTOCOL);
    } catch (e) {
      this.handlers.state('closed', `bad URL: ${String(e)}`);
      return;
    }
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onopen = () => {
      this.send({
        type: 'HELLO',
        version: PROTOCOL_VERSION,
        name: 'CLASP console',
        features: ['param', 'event', 'stream', 'gesture', 'timeline'],
        ...(this.token ? { token: this.token } : {}),
      } as Message);
    };
    ws.onmessage = (ev) => {
      if (!(ev.data instanceof ArrayBuffer)) return;
      let msg: Message;
      try {
        msg = decode(new Uint8Array(ev.data));
      } catch (e) {
        this.handlers.error(0, `undecodable frame: ${String(e)}`);
        return;
      }
      this.dispatch(msg);
    };
    ws.onclose = (ev) => {
      this.ws = null;
      const why = ev.reason || `closed (${ev.code})`;
      this.handlers.state('closed', why);
      if (!this.closedByUser) {
        this.retry = window.setTimeout(() => this.open(), this.backoff);
        this.backoff = Math.min(this.backoff * 2, 10_000);
      }
    };
  }

  close(): void {
    this.closedByUser = true;
    window.clearTimeout(this.retry);
    this.ws?.close(1000, 'console closed');
    this.ws = null;
  }

  private dispatch(msg: Message): void {
    const h = this.handlers;
    switch (msg.type) {
      case 'WELCOME':
        this.id = msg.session;
        this.backoff = 500;
        h.welcome();
        h.state('open', `${msg.name} · session ${msg.session.slice(0, 8)}`);
        // At most 30 updates a second per address (the relay holds the latest and sends it
        // when the interval has passed; events are never held): what a 30 fps view can
        // show, and a busy show cannot flood the browser.
        this.send({ type: 'SUBSCRIBE', id: 1, pattern: '/**', options: { maxRate: MAX_RATE } } as Message);
        break;
      case 'SNAPSHOT':
        for (const p of msg.params) h.param(p.address, p.value, p.revision, p.writer, p.timestamp);
        break;
      case 'SET':
        h.param(msg.address, msg.value, msg.revision);
        break;
      case 'PUBLISH':
        h.publish(msg.address, (msg.signal ?? 'event') as Signal, msg.value ?? msg.payload, msg.samples);
        break;
      case 'ERROR':
        h.error(msg.code, msg.message, msg.address);
        break;
      case 'PING':
        this.send({ type: 'PONG' } as Message);
        break;
      default:
        break;
    }
  }

  /** SET with an ACK asked for, so a refusal comes back as ERROR. */
  set(address: string, value: Value): void {
    this.send({ type: 'SET', address, value } as Message, QoS.Confirm);
  }

  /** GET: answered by a one-row SNAPSHOT carrying the last writer. */
  get(address: string): void {
    this.send({ type: 'GET', address } as Message);
  }

  get isOpen(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  private send(msg: Message, qos: QoS = QoS.Fire): void {
    if (this.ws?.readyState !== WebSocket.OPEN) return;
    this.ws.send(encode(msg, qos));
  }
}
