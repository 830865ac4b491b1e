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

export const IPTABLES_ARGV = ['iptables-save', '-c'];

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

/** Does the rule contain every word group, e.g. ["--dport 5555", "-j DROP"]? Whitespace-insensitive. */
export function ruleMatches(rule: RuleCounter, words: string[]): boolean {
  const spec = ` ${rule.spec.replace(/\s+/g, ' ')} `;
  return words.every((w) => spec.includes(` ${w.trim().replace(/\s+/g, ' ')} `) || spec.includes(w.trim()));
}
