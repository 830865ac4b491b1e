// Templates in lab files: {{server.ip}}, {{firewall.ip.front}}, {{net.lan}}. They name only the lab's own
// machines and networks, so a lab file cannot point a command at the host or the internet. One home for the
// pattern, for filling them in, and for finding the names a text uses.

/** A template: {{ name }} where name is dotted lower-case words. */
const TEMPLATE = /\{\{\s*([a-z]+(?:\.[a-z]+)*)\s*\}\}/g;
/** Anything in double braces, well-formed or not: {{env.HOME}} or {{ Server.IP }} must not pass as literal text. */
const ANY_BRACES = /\{\{(.*?)\}\}/gs;

/** Replace every template; an unknown name is an error (lab files were checked when loaded). */
export function expand(text: string, vars: Record<string, string>): string {
  return text.replace(TEMPLATE, (_, name: string) => {
    const v = vars[name];
    if (v === undefined) throw new Error(`unknown template {{${name}}}`);
    return v;
  });
}

/** Replace the templates this instance knows and leave the rest as written (for prose shown to people). */
export function fill(text: string, vars: Record<string, string>): string {
  return text.replace(TEMPLATE, (all, name: string) => vars[name] ?? all);
}

/** The names inside every {{...}} of a text, trimmed, in order. */
export function templateNames(text: string): string[] {
  return [...text.matchAll(ANY_BRACES)].map((m) => m[1]!.trim());
}

/**
 * Template values that are the templates themselves: expand(text, UNFILLED) gives the text as written. For
 * names that must not change from run to run or student to student (JUnit and Gradescope test names), where a
 * filled-in address or variant would make every run's names different.
 */
export const UNFILLED: Record<string, string> = new Proxy(
  {},
  { get: (_target, name) => (typeof name === 'string' ? `{{${name}}}` : undefined) },
);

/**
 * Template values in words, for a check described without an instance (one that was never made: nothing ran
 * that knew the addresses): "peer <server's address>:5555" rather than the lab file's "{{server.ip}}:5555".
 */
export const READABLE: Record<string, string> = new Proxy(
  {},
  {
    get: (_target, name) => {
      if (typeof name !== 'string') return undefined;
      const [head, ...rest] = name.split('.');
      if (rest[0] === 'ip') return `<${head}'s ${rest[1] ? `${rest[1]} ` : ''}address>`;
      if (head === 'net' && rest.length) return `<the ${rest.join(' ')} network>`;
      if (head === 'variant' && rest.length) return `<this run's ${rest.join(' ')}>`;
      return `<${name}>`;
    },
  },
);
