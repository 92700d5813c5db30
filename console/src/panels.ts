// The side panels: bridges, sessions, federation links and relay figures. They poll the
// relay's HTTP endpoints once a second (GET /api/v1/bridges, /api/v1/sessions, /health,
// /metrics) with the token as a bearer when one is given; a panel whose endpoint refuses says
// so instead of going blank.
import { drawSpark } from './tree';

export interface SessionRow {
  id: string;
  name: string;
  transport: string;
  subject: string | null;
  scopes: string[] | null;
  connected_ms: number;
  subscriptions: number;
  queue_depth: number;
  frames_in: number;
  rate_in: number;
}

interface BridgeRow {
  kind: string;
  name: string;
  up: boolean;
  received: number;
  sent: number;
  bad_input: number;
  refused: number;
  restarts: number;
  last_error: string | null;
}

interface FederationLink {
  peer?: string;
  role?: string;
  url?: string;
  state?: string;
  lag_ms?: number;
  last_sync_ms?: number;
  [key: string]: unknown;
}

/** What the panels tell the rest of the console. */
export interface PanelsHost {
  /** Sessions by id (the tree shows writers by name) and the console's own row. */
  sessions(rows: SessionRow[]): void;
}

const HISTORY = 120;

/** A relay figure drawn as a small chart: a gauge, or a counter shown as a rate per second. */
interface Figure {
  label: string;
  metric: string;
  rate: boolean;
  points: number[];
  last: number | undefined;
  canvas?: HTMLCanvasElement;
  value?: HTMLSpanElement;
}

const FIGURES: Array<[string, string, boolean]> = [
  ['sessions', 'clasp_sessions', false],
  ['params', 'clasp_params', false],
  ['subscriptions', 'clasp_subscriptions', false],
  ['messages in /s', 'clasp_messages_received_total', true],
  ['messages out /s', 'clasp_messages_sent_total', true],
  ['bytes in /s', 'clasp_bytes_received_total', true],
  ['dropped /s', 'clasp_dropped_total', true],
  ['errors sent /s', 'clasp_errors_sent_total', true],
  ['queued frames', 'clasp_outbound_queue_frames', false],
];

export class Panels {
  private base = '';
  private token = '';
  private timer: number | undefined;
  private readonly figures: Figure[] = FIGURES.map(([label, metric, rate]) => ({ label, metric, rate, points: [], last: undefined }));
  private lastRates = new Map<string, { frames: number; at: number }>();
  /** Supervised actors' states from the last /health (a bridge's supervisor says "restarting"). */
  private actors: Record<string, { state: string; restarts: number }> = {};

  constructor(
    private readonly els: { bridges: HTMLElement; sessions: HTMLElement; federation: HTMLElement; metrics: HTMLElement },
    private readonly host: PanelsHost,
  ) {
    for (const f of this.figures) {
      const box = document.createElement('div');
      box.className = 'figure';
      box.dataset.metric = f.metric;
      const head = document.createElement('div');
      head.className = 'figure-head';
      head.textContent = f.label;
      f.value = document.createElement('span');
      f.value.className = 'figure-value';
      head.appendChild(f.value);
      f.canvas = document.createElement('canvas');
      f.canvas.width = 150;
      f.canvas.height = 28;
      box.append(head, f.canvas);
      els.metrics.appendChild(box);
    }
  }

  /** Starts polling `base` (http(s)://host:port) with `token`. */
  start(base: string, token: string): void {
    this.base = base;
    this.token = token;
    window.clearInterval(this.timer);
    void this.poll();
    this.timer = window.setInterval(() => void this.poll(), 1000);
  }

  private async fetch(path: string): Promise<Response> {
    const headers: Record<string, string> = {};
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    return fetch(this.base + path, { headers, cache: 'no-store' });
  }

  private async poll(): Promise<void> {
    await Promise.all([this.pollBridges(), this.pollSessions(), this.pollHealth(), this.pollMetrics()]);
  }

  private async json<T>(path: string, target: HTMLElement): Promise<T | undefined> {
    try {
      const r = await this.fetch(path);
      if (!r.ok) {
        const why = r.status === 401 || r.status === 403 ? 'needs the admin token' : `HTTP ${r.status}`;
        target.replaceChildren(note(`${path}: ${why}`));
        return undefined;
      }
      return (await r.json()) as T;
    } catch (e) {
      target.replaceChildren(note(`${path}: relay unreachable`));
      return undefined;
    }
  }

  private async pollBridges(): Promise<void> {
    const body = await this.json<{ bridges: BridgeRow[] }>('/api/v1/bridges', this.els.bridges);
    if (!body) return;
    if (body.bridges.length === 0) {
      this.els.bridges.replaceChildren(note('no bridges on this relay'));
      return;
    }
    this.els.bridges.replaceChildren(
      table(
        ['bridge', 'kind', 'state', 'in', 'out', 'bad', 'refused', 'restarts', 'last error'],
        body.bridges.map((b) => {
          const state = b.up ? 'up' : 'down';
          const supervisor = this.actors[b.name]?.state;
          const shown = !b.up && supervisor && supervisor !== 'running' ? `down (${supervisor})` : state;
          return {
            attrs: { 'data-bridge': b.name, 'data-state': state },
            cells: [b.name, b.kind, badge(shown, b.up ? 'ok' : 'bad'), b.received, b.sent, b.bad_input, b.refused, b.restarts, b.last_error ?? ''],
          };
        }),
      ),
    );
  }

  private async pollSessions(): Promise<void> {
    const body = await this.json<{ sessions: SessionRow[] }>('/api/v1/sessions', this.els.sessions);
    if (!body) return;
    this.host.sessions(body.sessions);
    const now = Date.now();
    const rates = new Map<string, { frames: number; at: number }>();
    const rows = body.sessions.map((s) => {
      const before = this.lastRates.get(s.id);
      rates.set(s.id, { frames: s.frames_in, at: now });
      const rate = before && now > before.at ? ((s.frames_in - before.frames) * 1000) / (now - before.at) : s.rate_in;
      return {
        attrs: { 'data-session': s.id },
        cells: [s.name, s.transport, s.subscriptions, s.queue_depth, `${rate.toFixed(1)}/s`, s.id.slice(0, 8)],
      };
    });
    this.lastRates = rates;
    this.els.sessions.replaceChildren(
      rows.length ? table(['name', 'transport', 'subs', 'queue', 'rate in', 'id'], rows) : note('no sessions'),
    );
  }

  private async pollHealth(): Promise<void> {
    const body = await this.json<{ federation?: FederationLink[]; actors?: Record<string, { state: string; restarts: number }> }>(
      '/health',
      this.els.federation,
    );
    if (!body) return;
    this.actors = body.actors ?? {};
    const links = Array.isArray(body.federation) ? body.federation : [];
    if (links.length === 0) {
      this.els.federation.replaceChildren(note('no federation links'));
      return;
    }
    this.els.federation.replaceChildren(
      table(
        ['peer', 'role', 'url', 'state', 'lag', 'last sync'],
        links.map((l) => ({
          attrs: { 'data-peer': String(l.peer ?? ''), 'data-state': String(l.state ?? '') },
          cells: [
            String(l.peer ?? ''),
            String(l.role ?? ''),
            String(l.url ?? ''),
            badge(String(l.state ?? '?'), l.state === 'connected' || l.state === 'up' || l.state === 'synced' ? 'ok' : 'bad'),
            typeof l.lag_ms === 'number' ? `${l.lag_ms.toFixed(1)} ms` : '',
            typeof l.last_sync_ms === 'number' ? `${Math.max(0, Math.round((Date.now() - l.last_sync_ms) / 1000))} s ago` : 'never',
          ],
        })),
      ),
    );
  }

  private async pollMetrics(): Promise<void> {
    let text: string;
    try {
      const r = await this.fetch('/metrics');
      if (!r.ok) return;
      text = await r.text();
    } catch {
      return;
    }
    const sums = parseMetrics(text);
    for (const f of this.figures) {
      const v = sums.get(f.metric);
      if (v === undefined) continue;
      let point = v;
      if (f.rate) {
        point = f.last === undefined ? 0 : Math.max(0, v - f.last);
        f.last = v;
      }
      f.points.push(point);
      if (f.points.length > HISTORY) f.points.shift();
      if (f.value) f.value.textContent = Number.isInteger(point) ? String(point) : point.toFixed(1);
      if (f.canvas) drawSpark(f.canvas, f.points.length > 1 ? f.points : [point, point]);
    }
  }
}

/** Sums every sample of each metric family (labels added up), from Prometheus text. */
export function parseMetrics(text: string): Map<string, number> {
  const sums = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const v = Number(m[3]);
    if (!Number.isFinite(v)) continue;
    sums.set(m[1], (sums.get(m[1]) ?? 0) + v);
  }
  return sums;
}

function note(text: string): HTMLElement {
  const p = document.createElement('p');
  p.className = 'muted';
  p.textContent = text;
  return p;
}

function badge(text: string, kind: 'ok' | 'bad'): HTMLElement {
  const s = document.createElement('span');
  s.className = `badge ${kind}`;
  s.textContent = text;
  return s;
}

function table(head: string[], rows: Array<{ attrs: Record<string, string>; cells: Array<string | number | HTMLElement> }>): HTMLElement {
  const t = document.createElement('table');
  const tr = t.createTHead().insertRow();
  for (const h of head) {
    const th = document.createElement('th');
    th.textContent = h;
    tr.appendChild(th);
  }
  const body = t.createTBody();
  for (const r of rows) {
    const row = body.insertRow();
    for (const [k, v] of Object.entries(r.attrs)) row.setAttribute(k, v);
    for (const c of r.cells) {
      const td = row.insertCell();
      if (c instanceof HTMLElement) td.appendChild(c);
      else td.textContent = td.title = String(c);
    }
  }
  return t;
}
