// Everything the console knows about the signal space: one entry per address, the tree of
// segments above them, and the flattened, filtered list of rows the virtual list shows.
// Incoming messages only mutate entries and mark them dirty; the view reads them once per
// animation frame, so 10 000 updates a second cost one repaint of the visible rows.
import type { Signal } from './client';
import type { Value } from '@clasp-to/core';
import { matcher } from './pattern';

export const SPARK_POINTS = 64;

export interface Entry {
  address: string;
  signal: Signal;
  value: Value | undefined;
  revision: number | undefined;
  writer: string | undefined;
  /** Revision the writer belongs to (a SET broadcast does not carry the writer). */
  writerRevision: number | undefined;
  /** Local ms of the last update. */
  updated: number;
  /** Local ms until which the row flashes (events). */
  flashUntil: number;
  /** Recent numeric samples (streams), oldest first. */
  samples: number[];
  /** Fader range, fixed at first sight so a drag does not rescale under the pointer. */
  lo: number;
  hi: number;
  /** The relay refused a write here (scope). */
  refused: string | undefined;
  /** The last value the relay reported (a refused drag falls back to it). */
  confirmed: Value | undefined;
}

export interface TreeNode {
  name: string;
  path: string;
  children: Map<string, TreeNode>;
  entry: Entry | undefined;
  leaves: number;
}

export interface Row {
  node: TreeNode;
  depth: number;
}

function newNode(name: string, path: string): TreeNode {
  return { name, path, children: new Map(), entry: undefined, leaves: 0 };
}

function rangeFor(v: number): [number, number] {
  if (v >= 0 && v <= 1) return [0, 1];
  if (v >= -1 && v < 0) return [-1, 1];
  if (Number.isInteger(v) && v >= 0 && v <= 127) return [0, 127];
  if (Number.isInteger(v) && v >= 0 && v <= 255) return [0, 255];
  const mag = Math.pow(10, Math.ceil(Math.log10(Math.abs(v) + 1)));
  return v < 0 ? [-mag, mag] : [0, mag];
}

export class Store {
  readonly entries = new Map<string, Entry>();
  readonly root = newNode('', '');
  /** Groups the user collapsed (by path). Everything starts expanded. */
  readonly collapsed = new Set<string>();
  rows: Row[] = [];
  private structureDirty = true;
  /** Something visible may have changed since the last frame. */
  dirty = true;
  private filterText = '';
  private filter: (a: string) => boolean = () => true;

  setFilter(text: string): void {
    this.filterText = text;
    this.filter = matcher(text);
    this.structureDirty = true;
    this.dirty = true;
  }

  get filterActive(): boolean {
    return this.filterText.trim() !== '';
  }

  toggle(path: string): void {
    if (this.collapsed.has(path)) this.collapsed.delete(path);
    else this.collapsed.add(path);
    this.structureDirty = true;
    this.dirty = true;
  }

  collapseAll(collapse: boolean): void {
    this.collapsed.clear();
    if (collapse) {
      const walk = (n: TreeNode) => {
        for (const c of n.children.values()) {
          if (c.children.size > 0) {
            this.collapsed.add(c.path);
            walk(c);
          }
        }
      };
      walk(this.root);
    }
    this.structureDirty = true;
    this.dirty = true;
  }

  /** The entry for an address, created (with its tree path) on first sight. */
  entry(address: string, signal: Signal, first: Value | undefined): Entry {
    let e = this.entries.get(address);
    if (e) return e;
    const [lo, hi] = typeof first === 'number' ? rangeFor(first) : [0, 1];
    e = {
      address,
      signal,
      value: undefined,
      revision: undefined,
      writer: undefined,
      writerRevision: undefined,
      updated: 0,
      flashUntil: 0,
      samples: [],
      lo,
      hi,
      refused: undefined,
      confirmed: undefined,
    };
    this.entries.set(address, e);
    let node = this.root;
    let path = '';
    for (const seg of address.split('/').slice(1)) {
      path += '/' + seg;
      node.leaves++;
      let child = node.children.get(seg);
      if (!child) {
        child = newNode(seg, path);
        node.children.set(seg, child);
      }
      node = child;
    }
    node.leaves++;
    node.entry = e;
    this.structureDirty = true;
    return e;
  }

  /** Rebuilds the visible rows when the tree, the filter or a collapse changed. */
  flatten(): boolean {
    if (!this.structureDirty) return false;
    this.structureDirty = false;
    const rows: Row[] = [];
    const filtering = this.filterActive;
    const walk = (node: TreeNode, depth: number): boolean => {
      const names = [...node.children.keys()].sort(naturalCompare);
      let any = false;
      for (const name of names) {
        const child = node.children.get(name)!;
        const at = rows.length;
        const selfMatch = child.entry !== undefined && this.filter(child.entry.address);
        rows.push({ node: child, depth });
        let below = false;
        if (child.children.size > 0 && (filtering || !this.collapsed.has(child.path))) {
          below = walk(child, depth + 1);
        }
        if (filtering && !selfMatch && !below) rows.length = at;
        else any = true;
      }
      return any;
    };
    walk(this.root, 0);
    this.rows = rows;
    return true;
  }
}

/** `/ch/2` before `/ch/10`. */
const collator = new Intl.Collator(undefined, { numeric: true });
function naturalCompare(a: string, b: string): number {
  return collator.compare(a, b);
}
