// `iptables-save -c` output -> rules with their packet counters.

export interface RuleCounter {
  table: string;
  chain: string;
  packets: number;
  bytes: number;
  /** The rule as iptables -S prints it, without -A CHAIN. */
  spec: string;
  line: string;
}

export function parseIptablesSave(text: string): RuleCounter[] {
  const rules: RuleCounter[] = [];
  let table = 'filter';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('*')) table = line.slice(1);
    const m = /^\[(\d+):(\d+)\]\s+-A\s+(\S+)\s*(.*)$/.exec(line);
    if (m) rules.push({ table, chain: m[3]!, packets: Number(m[1]), bytes: Number(m[2]), spec: m[4]!, line });
  }
  return rules;
}

/**
 * Does the rule contain every word group, e.g. ["--dport 5555", "-j DROP"]? Each group must appear as whole
 * words, in order and next to each other, in the rule as iptables -S prints it: "--dport 555" does not match
 * a rule for port 5555. A bare IPv4 address means the same as address/32, as iptables prints it.
 */
export function ruleMatches(rule: RuleCounter, words: string[]): boolean {
  const spec = tokens(rule.spec);
  return words.every((w) => {
    const want = tokens(w);
    if (want.length === 0) return true;
    for (let i = 0; i + want.length <= spec.length; i++) if (want.every((t, k) => t === spec[i + k])) return true;
    return false;
  });
}

/** Words of a rule; quoted strings (comments) are one word; a.b.c.d becomes a.b.c.d/32. */
function tokens(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)) {
    const t = m[1] ?? m[2]!;
    out.push(/^!?\d{1,3}(\.\d{1,3}){3}$/.test(t) ? `${t}/32` : t);
  }
  return out;
}
