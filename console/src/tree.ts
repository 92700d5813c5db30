// The address tree as a virtualised list: a fixed pool of row elements positioned over a tall
// spacer, refilled from `Store.rows` once per animation frame. Only the rows on screen exist
// in the DOM, so 10 000 addresses scroll as smoothly as 10.
import type { Value } from '@clasp-to/core';
import type { Entry, Row, Store } from './store';
import { mayWrite } from './pattern';

export const ROW_HEIGHT = 24;
const OVERSCAN = 6;

/** What a row needs from the rest of the console. */
export interface TreeHost {
  /** Writes a param (the drag and toggle path). */
  set(address: string, value: Value): void;
  /** Asks the relay for an address's last writer. */
  fetchWriter(address: string): void;
  /** Session id -> client name, from the sessions panel. */
  names: Map<string, string>;
  /** The console session's own write scopes; `null` when the relay runs open. */
  scopes: string[] | null;
  /** The console's own session id (its writes show as "this console"). */
  selfId: string;
}

interface RowEls {
  root: HTMLDivElement;
  caret: HTMLSpanElement;
  name: HTMLSpanElement;
  fader: HTMLDivElement;
  fill: HTMLDivElement;
  num: HTMLSpanElement;
  toggle: HTMLButtonElement;
  text: HTMLSpanElement;
  spark: HTMLCanvasElement;
  rev: HTMLSpanElement;
  writer: HTMLSpanElement;
  age: HTMLSpanElement;
  row: Row | undefined;
  sparkDrawn: number;
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls: string, parent: HTMLElement): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  e.className = cls;
  parent.appendChild(e);
  return e;
}

export class TreeView {
  private pool: RowEls[] = [];
  private drag: { address: string; entry: Entry; fader: HTMLDivElement } | null = null;
  private pendingDrag: { address: string; value: number } | null = null;
  private lastScroll = -1;
  private lastHeight = -1;
  private lastSpark = 0;

  constructor(
    private readonly container: HTMLElement,
    private readonly spacer: HTMLElement,
    private readonly store: Store,
    private readonly host: TreeHost,
  ) {
    container.addEventListener('scroll', () => (this.store.dirty = true), { passive: true });
    window.addEventListener('resize', () => (this.store.dirty = true));
    container.addEventListener('pointermove', (ev) => this.onDragMove(ev));
    container.addEventListener('pointerup', () => this.endDrag());
    container.addEventListener('pointercancel', () => this.endDrag());
  }

  private makeRow(): RowEls {
    const root = el('div', 'row', this.container);
    const cell = el('span', 'c-name', root);
    const caret = el('span', 'caret', cell);
    const name = el('span', 'name', cell);
    const valueCell = el('span', 'c-value', root);
    const fader = el('div', 'fader', valueCell);
    const fill = el('div', 'fill', fader);
    const num = el('span', 'num', fader);
    const toggle = el('button', 'toggle', valueCell);
    toggle.type = 'button';
    const text = el('span', 'text', valueCell);
    const spark = el('canvas', 'spark', valueCell);
    spark.width = 160;
    spark.height = 18;
    const rev = el('span', 'c-rev', root);
    const writer = el('span', 'c-writer', root);
    const age = el('span', 'c-age', root);
    const r: RowEls = { root, caret, name, fader, fill, num, toggle, text, spark, rev, writer, age, row: undefined, sparkDrawn: -1 };
    caret.addEventListener('click', () => {
      if (r.row && r.row.node.children.size > 0) this.store.toggle(r.row.node.path);
    });
    fader.addEventListener('pointerdown', (ev) => {
      const entry = r.row?.node.entry;
      if (!entry || !this.writable(entry)) return;
      fader.setPointerCapture(ev.pointerId);
      this.drag = { address: entry.address, entry, fader };
      this.onDragMove(ev);
      ev.preventDefault();
    });
    fader.addEventListener('pointermove', (ev) => this.onDragMove(ev));
    fader.addEventListener('pointerup', () => this.endDrag());
    toggle.addEventListener('click', () => {
      const entry = r.row?.node.entry;
      if (!entry || !this.writable(entry) || typeof entry.value !== 'boolean') return;
      this.host.set(entry.address, !entry.value);
    });
    return r;
  }

  private writable(entry: Entry): boolean {
    return entry.signal === 'param' && entry.refused === undefined && mayWrite(this.host.scopes, entry.address);
  }

  private onDragMove(ev: PointerEvent): void {
    const d = this.drag;
    if (!d) return;
    const box = d.fader.getBoundingClientRect();
    const t = Math.min(1, Math.max(0, (ev.clientX - box.left) / Math.max(1, box.width)));
    let value = d.entry.lo + t * (d.entry.hi - d.entry.lo);
    if (d.entry.hi - d.entry.lo >= 100) value = Math.round(value);
    else value = Math.round(value * 1000) / 1000;
    this.pendingDrag = { address: d.address, value };
  }

  private endDrag(): void {
    this.drag = null;
  }

  /** Called once per animation frame: sends the latest drag value and repaints what changed. */
  frame(now: number): void {
    if (this.pendingDrag) {
      const { address, value } = this.pendingDrag;
      this.pendingDrag = null;
      this.host.set(address, value);
    }
    const structure = this.store.flatten();
    const rows = this.store.rows;
    if (structure) this.spacer.style.height = `${rows.length * ROW_HEIGHT}px`;
    const top = this.container.scrollTop;
    const height = this.container.clientHeight;
    // Ages tick even when nothing arrives: repaint at least a few times a second.
    const stale = now - this.lastSpark > 250;
    if (!this.store.dirty && !structure && top === this.lastScroll && height === this.lastHeight && !stale) return;
    this.store.dirty = false;
    this.lastScroll = top;
    this.lastHeight = height;
    const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(rows.length, Math.ceil((top + height) / ROW_HEIGHT) + OVERSCAN);
    const need = last - first;
    while (this.pool.length < need) this.pool.push(this.makeRow());
    // Sparklines redraw at most 30 times a second.
    const drawSparks = now - this.lastSpark >= 33;
    if (drawSparks) this.lastSpark = now;
    for (let i = 0; i < this.pool.length; i++) {
      const r = this.pool[i];
      const index = first + i;
      if (index >= last) {
        if (r.row) {
          r.root.style.display = 'none';
          r.row = undefined;
        }
        continue;
      }
      this.paint(r, rows[index], index, now, drawSparks);
    }
  }

  private paint(r: RowEls, row: Row, index: number, now: number, drawSparks: boolean): void {
    if (r.row !== row) r.sparkDrawn = -1;
    r.row = row;
    const { node, depth } = row;
    const e = node.entry;
    r.root.style.display = '';
    r.root.style.transform = `translateY(${index * ROW_HEIGHT}px)`;
    r.root.dataset.address = e ? e.address : '';
    r.root.dataset.path = node.path;
    r.root.dataset.kind = e ? e.signal : 'group';
    r.root.classList.toggle('flash', !!e && e.flashUntil > now);
    r.name.style.paddingLeft = `${depth * 14}px`;
    const group = node.children.size > 0;
    r.caret.textContent = group ? (this.store.collapsed.has(node.path) && !this.store.filterActive ? '▸' : '▾') : '';
    r.name.textContent = group && !e ? `${node.name}/ (${node.leaves})` : node.name;
    r.name.title = node.path;
    r.fader.style.display = 'none';
    r.toggle.style.display = 'none';
    r.text.style.display = 'none';
    r.spark.style.display = 'none';
    if (!e) {
      r.rev.textContent = '';
      r.writer.textContent = '';
      r.age.textContent = '';
      return;
    }
    const v = e.value;
    const writable = this.writable(e);
    if (e.signal === 'stream' && e.samples.length > 0) {
      r.spark.style.display = '';
      if (drawSparks && r.sparkDrawn !== e.updated) {
        drawSpark(r.spark, e.samples);
        r.sparkDrawn = e.updated;
      }
      r.text.style.display = '';
      r.text.textContent = fmt(v);
    } else if (typeof v === 'number' && e.signal === 'param') {
      r.fader.style.display = '';
      r.fader.classList.toggle('locked', !writable);
      r.fader.title = writable ? 'drag to set' : e.refused ?? 'no write scope here';
      const t = (v - e.lo) / (e.hi - e.lo || 1);
      r.fill.style.width = `${Math.min(100, Math.max(0, t * 100))}%`;
      r.num.textContent = fmt(v);
    } else if (typeof v === 'boolean') {
      r.toggle.style.display = '';
      r.toggle.textContent = v ? 'on' : 'off';
      r.toggle.classList.toggle('on', v);
      r.toggle.disabled = !writable;
    } else {
      r.text.style.display = '';
      r.text.textContent = fmt(v);
    }
    r.rev.textContent = e.revision === undefined ? '' : String(e.revision);
    const w = e.writer;
    const who = w === this.host.selfId ? 'this console' : w ? this.host.names.get(w) ?? w.slice(0, 8) : undefined;
    r.writer.textContent = who ?? (e.signal === 'param' ? '…' : '');
    r.writer.title = w ?? '';
    r.age.textContent = e.updated ? age(now - e.updated) : '';
    if (e.signal === 'param' && e.revision !== undefined && e.writerRevision !== e.revision) {
      this.host.fetchWriter(e.address);
    }
  }
}

export function fmt(v: Value | undefined): string {
  if (v === undefined) return '';
  if (v === null) return 'null';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toFixed(3);
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (v instanceof Uint8Array) return `bytes[${v.length}]`;
  const s = JSON.stringify(v);
  return s.length > 80 ? s.slice(0, 77) + '…' : s;
}

function age(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)}m`;
  return `${Math.floor(ms / 3_600_000)}h`;
}

/** A line of recent samples, scaled to their own range. */
export function drawSpark(c: HTMLCanvasElement, samples: number[]): void {
  const g = c.getContext('2d');
  if (!g) return;
  const { width, height } = c;
  g.clearRect(0, 0, width, height);
  if (samples.length < 2) return;
  let lo = Infinity;
  let hi = -Infinity;
  for (const s of samples) {
    if (s < lo) lo = s;
    if (s > hi) hi = s;
  }
  const span = hi - lo || 1;
  g.strokeStyle = '#4fc3f7';
  g.lineWidth = 1.5;
  g.beginPath();
  samples.forEach((s, i) => {
    const x = (i / (samples.length - 1)) * (width - 2) + 1;
    const y = height - 2 - ((s - lo) / span) * (height - 4);
    if (i === 0) g.moveTo(x, y);
    else g.lineTo(x, y);
  });
  g.stroke();
}
