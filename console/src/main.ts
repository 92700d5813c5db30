// The console page: connects a CLASP session to the relay that served it (or another one),
// feeds the store from it, and drives the tree, the event log and the panels from one
// requestAnimationFrame loop.
import './style.css';
import type { Value } from '@clasp-to/core';
import { Session } from './client';
import type { Signal } from './client';
import { Panels } from './panels';
import type { SessionRow } from './panels';
import { SPARK_POINTS, Store } from './store';
import { TreeView, fmt } from './tree';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

const store = new Store();
const names = new Map<string, string>();
const LOG_MAX = 200;
const pendingLog: string[] = [];
/** Addresses whose writer was asked for, and when (ms): at most one GET per address a second. */
const writerAsked = new Map<string, number>();
let writerBudget = 0;
let session: Session | null = null;
let scopes: string[] | null = null;

const host = {
  names,
  get scopes() {
    return scopes;
  },
  get selfId() {
    return session?.id ?? '';
  },
  set(address: string, value: Value) {
    const e = store.entries.get(address);
    if (e) {
      // Shown at once; the relay's broadcast confirms it (or the ERROR undoes it).
      e.value = value;
      store.dirty = true;
    }
    session?.set(address, value);
  },
  fetchWriter(address: string) {
    const now = performance.now();
    if (writerBudget <= 0 || (writerAsked.get(address) ?? -Infinity) > now - 1000) return;
    writerBudget--;
    writerAsked.set(address, now);
    session?.get(address);
  },
};

const view = new TreeView($('tree'), $('tree-spacer'), store, host);
const panels = new Panels(
  { bridges: $('bridges'), sessions: $('sessions'), federation: $('federation'), metrics: $('metrics') },
  {
    sessions(rows: SessionRow[]) {
      names.clear();
      for (const r of rows) names.set(r.id, r.name);
      const me = rows.find((r) => r.id === session?.id);
      if (me) scopes = me.scopes;
      store.dirty = true;
    },
  },
);

function onParam(address: string, value: Value, revision: number | undefined, writer?: string, timestampUs?: number) {
  const e = store.entry(address, 'param', value);
  // A GET's answer can arrive after a newer SET broadcast: revisions only grow, so an older
  // row is stale and must not put an old value back.
  if (revision !== undefined && e.revision !== undefined && revision < e.revision) return;
  e.signal = 'param';
  e.value = value;
  e.confirmed = value;
  if (revision !== undefined) e.revision = revision;
  if (writer !== undefined) {
    e.writer = writer;
    e.writerRevision = revision;
  }
  const now = performance.now();
  e.updated = timestampUs ? now - Math.max(0, Date.now() - timestampUs / 1000) : now;
  store.dirty = true;
}

function onPublish(address: string, signal: Signal, value: Value | undefined, samples?: number[]) {
  const e = store.entry(address, signal, value);
  e.signal = signal;
  e.value = value;
  e.updated = performance.now();
  if (signal === 'stream') {
    const add = samples ?? (typeof value === 'number' ? [value] : []);
    e.samples.push(...add);
    if (e.samples.length > SPARK_POINTS) e.samples.splice(0, e.samples.length - SPARK_POINTS);
  } else {
    e.flashUntil = e.updated + 600;
    pendingLog.push(`${new Date().toLocaleTimeString()}  ${signal}  ${address}  ${fmt(value)}`);
    if (pendingLog.length > LOG_MAX) pendingLog.splice(0, pendingLog.length - LOG_MAX);
  }
  store.dirty = true;
}

function message(text: string) {
  $('message').textContent = text;
}

function connect(url: string, token: string) {
  session?.close();
  store.entries.clear();
  store.root.children.clear();
  store.root.leaves = 0;
  store.setFilter(($('filter') as HTMLInputElement).value);
  scopes = null;
  session = new Session(url, token, {
    param: onParam,
    publish: onPublish,
    welcome() {
      // The relay may have restarted (revisions from 1 again): forget the old ones.
      for (const e of store.entries.values()) {
        e.revision = undefined;
        e.writerRevision = undefined;
      }
    },
    error(code, text, address) {
      if (address && code >= 300 && code < 400) {
        const e = store.entries.get(address);
        if (e) {
          e.refused = `${code} ${text}`;
          e.value = e.confirmed;
          store.dirty = true;
        }
      }
      message(`relay error ${code}: ${text}${address ? ` (${address})` : ''}`);
    },
    state(state, detail) {
      const s = $('status');
      s.dataset.state = state;
      s.textContent = `${state}: ${detail}`;
    },
  });
  session.open();
  const u = new URL(url);
  u.protocol = u.protocol === 'wss:' ? 'https:' : 'http:';
  panels.start(`${u.protocol}//${u.host}`, token);
}

function defaultUrl(): string {
  const q = new URLSearchParams(location.search).get('relay');
  if (q) return q;
  if (location.protocol === 'http:' || location.protocol === 'https:') {
    return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/`;
  }
  return 'ws://127.0.0.1:7330/';
}

const urlInput = $('url') as HTMLInputElement;
const tokenInput = $('token') as HTMLInputElement;
urlInput.value = defaultUrl();
tokenInput.value = new URLSearchParams(location.search).get('token') ?? sessionStorage.getItem('clasp-token') ?? '';
$('connect').addEventListener('submit', (ev) => {
  ev.preventDefault();
  sessionStorage.setItem('clasp-token', tokenInput.value);
  connect(urlInput.value.trim(), tokenInput.value.trim());
});
$('filter').addEventListener('input', (ev) => store.setFilter((ev.target as HTMLInputElement).value));
$('expand').addEventListener('click', () => store.collapseAll(false));
$('collapse').addEventListener('click', () => store.collapseAll(true));

const log = $('log');
const count = $('count');
let lastCount = -1;
function frame(now: number) {
  writerBudget = Math.min(30, writerBudget + 2);
  view.frame(now);
  if (pendingLog.length) {
    const items = pendingLog.splice(0).map((t) => {
      const li = document.createElement('li');
      li.textContent = t;
      return li;
    });
    log.prepend(...items.reverse());
    while (log.childElementCount > LOG_MAX) log.lastElementChild?.remove();
  }
  if (store.entries.size !== lastCount) {
    lastCount = store.entries.size;
    count.textContent = `${lastCount} addresses`;
  }
  requestAnimationFrame(frame);
}
requestAnimationFrame(frame);

// For the end-to-end tests and the curious: read-only views of the live state.
(window as unknown as { claspConsole: unknown }).claspConsole = {
  get addresses() {
    return store.entries.size;
  },
  get rows() {
    return store.rows.length;
  },
  get sessionId() {
    return session?.id ?? '';
  },
  value(address: string) {
    return store.entries.get(address)?.value;
  },
};

connect(urlInput.value, tokenInput.value);
