// Unit tests of the console's pure logic: pattern matching (filter and scopes), the tree's
// flattening under filters and collapsed groups, and the /metrics parser. The page itself is
// tested end to end in a real browser (tests/console/e2e.mjs).
import { describe, expect, it } from 'vitest';
import { matcher, mayWrite } from './pattern';
import { Store } from './store';
import { parseMetrics } from './panels';

describe('matcher', () => {
  it('follows CLASP wildcards', () => {
    expect(matcher('/a/*')('/a/b')).toBe(true);
    expect(matcher('/a/*')('/a/b/c')).toBe(false);
    expect(matcher('/a/**')('/a/b/c')).toBe(true);
    expect(matcher('/a/**')('/a')).toBe(true);
    expect(matcher('/a/**/z')('/a/z')).toBe(true);
    expect(matcher('/a/**/z')('/a/b/c/z')).toBe(true);
    expect(matcher('/a/**/z')('/a/b/c/y')).toBe(false);
    expect(matcher('/mix/ch*/gain')('/mix/ch12/gain')).toBe(true);
    expect(matcher('/mix/ch*/gain')('/mix/bus1/gain')).toBe(false);
    expect(matcher('/a.b')('/aXb')).toBe(false);
  });

  it('matches plain text anywhere, ignoring case; empty matches all', () => {
    expect(matcher('Dimmer')('/stage/dimmer/1')).toBe(true);
    expect(matcher('fader')('/stage/dimmer')).toBe(false);
    expect(matcher('  ')('/anything')).toBe(true);
  });
});

describe('mayWrite', () => {
  it('allows everything on an open relay', () => {
    expect(mayWrite(null, '/x')).toBe(true);
  });
  it('needs a write or admin scope covering the address', () => {
    const scopes = ['read:/**', 'write:/stage/**', 'admin:/sys/*'];
    expect(mayWrite(scopes, '/stage/dimmer')).toBe(true);
    expect(mayWrite(scopes, '/sys/clock')).toBe(true);
    expect(mayWrite(scopes, '/fx/strobe')).toBe(false);
    expect(mayWrite([], '/stage/dimmer')).toBe(false);
  });
});

function paths(store: Store): string[] {
  store.flatten();
  return store.rows.map((r) => r.node.path);
}

describe('Store', () => {
  const filled = () => {
    const s = new Store();
    for (const a of ['/stage/dimmer/2', '/stage/dimmer/10', '/stage/dimmer/1', '/fx/strobe', '/stage/on']) s.entry(a, 'param', 0);
    return s;
  };

  it('lists groups before their children, children in natural order', () => {
    expect(paths(filled())).toEqual([
      '/fx',
      '/fx/strobe',
      '/stage',
      '/stage/dimmer',
      '/stage/dimmer/1',
      '/stage/dimmer/2',
      '/stage/dimmer/10',
      '/stage/on',
    ]);
  });

  it('hides what a collapsed group holds', () => {
    const s = filled();
    s.toggle('/stage/dimmer');
    expect(paths(s)).toEqual(['/fx', '/fx/strobe', '/stage', '/stage/dimmer', '/stage/on']);
    s.collapseAll(true);
    expect(paths(s)).toEqual(['/fx', '/stage']);
    s.collapseAll(false);
    expect(paths(s)).toHaveLength(8);
  });

  it('keeps only matches and their parents under a filter', () => {
    const s = filled();
    s.toggle('/stage');
    s.setFilter('/stage/dimmer/*');
    expect(paths(s)).toEqual(['/stage', '/stage/dimmer', '/stage/dimmer/1', '/stage/dimmer/2', '/stage/dimmer/10']);
    s.setFilter('strobe');
    expect(paths(s)).toEqual(['/fx', '/fx/strobe']);
    s.setFilter('/nothing/**');
    expect(paths(s)).toEqual([]);
  });

  it('counts leaves and fixes a fader range at first sight', () => {
    const s = new Store();
    expect([s.entry('/a/x', 'param', 0.5).lo, s.entry('/a/x', 'param', 0.5).hi]).toEqual([0, 1]);
    expect(s.entry('/a/midi', 'param', 100).hi).toBe(127);
    expect(s.entry('/a/dmx', 'param', 200).hi).toBe(255);
    expect(s.entry('/a/hz', 'param', 440).hi).toBe(1000);
    expect(s.entry('/a/pan', 'param', -0.5).lo).toBe(-1);
    expect(s.root.children.get('a')?.leaves).toBe(5);
    expect(s.entries.size).toBe(5);
  });
});

describe('parseMetrics', () => {
  it('sums each family across its labels and skips comments', () => {
    const text = [
      '# HELP clasp_sessions Open sessions.',
      '# TYPE clasp_sessions gauge',
      'clasp_sessions 3',
      'clasp_dropped_total{reason="conflated"} 4',
      'clasp_dropped_total{reason="shed"} 6',
      'clasp_delivery_latency_seconds_bucket{le="+Inf"} 12',
      'garbage line',
      'clasp_bad NaNx',
    ].join('\n');
    const m = parseMetrics(text);
    expect(m.get('clasp_sessions')).toBe(3);
    expect(m.get('clasp_dropped_total')).toBe(10);
    expect(m.get('clasp_delivery_latency_seconds_bucket')).toBe(12);
    expect(m.has('clasp_bad')).toBe(false);
  });
});
