// CLASP address patterns (WIRE §9.2): `*` is one segment, `**` any number of segments
// (zero included). Used for the tree filter and to read the console's own write scopes.

/** Compiles a pattern to a matcher; a filter without a leading `/` matches as plain text. */
export function matcher(filter: string): (address: string) => boolean {
  const f = filter.trim();
  if (!f) return () => true;
  if (!f.startsWith('/')) {
    const needle = f.toLowerCase();
    return (a) => a.toLowerCase().includes(needle);
  }
  const parts = f.split('/').slice(1);
  return (address) => matchSegments(parts, 0, address.split('/').slice(1), 0);
}

function matchSegments(p: string[], i: number, a: string[], j: number): boolean {
  while (i < p.length) {
    const seg = p[i];
    if (seg === '**') {
      if (i === p.length - 1) return true;
      for (let k = j; k <= a.length; k++) if (matchSegments(p, i + 1, a, k)) return true;
      return false;
    }
    if (j >= a.length) return false;
    if (seg !== '*' && !globSegment(seg, a[j])) return false;
    i++;
    j++;
  }
  return j === a.length;
}

/** A literal segment, or one with `*` inside (`fader*`) matching any run of characters. */
function globSegment(seg: string, text: string): boolean {
  if (!seg.includes('*')) return seg === text;
  const re = new RegExp('^' + seg.split('*').map(escape).join('.*') + '$');
  return re.test(text);
}

function escape(s: string): string {
  return s.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
}

/** Whether scopes (`write:/a/**`, `admin:/**`) allow writing `address`; `null` scopes: open relay. */
export function mayWrite(scopes: string[] | null, address: string): boolean {
  if (scopes === null) return true;
  return scopes.some((s) => {
    const [action, pattern] = [s.slice(0, s.indexOf(':')), s.slice(s.indexOf(':') + 1)];
    return (action === 'write' || action === 'admin') && matcher(pattern)(address);
  });
}
