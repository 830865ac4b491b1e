// Plain-text rendering of engine events, for `lab start` off a TTY and for `lab grade` progress.
import type { LabEvent } from '../engine/events.js';
import type { NodeName } from '../lab/schema.js';
import { formatDuration } from '../lab/duration.js';
import { formatEndpoint, type Socket } from '../observe/ss.js';
import { renderCheck } from '../report/text.js';
import type { Style } from '../report/style.js';
import { renderLadder } from '../report/ladder-text.js';
import { eventsIn } from '../trace/timeline.js';

/** The ladder fits the terminal; off a terminal (a pipe, a log), 100 columns. */
export function ladderWidth(columns: number | undefined): number {
  return Math.min(160, columns && columns > 0 ? columns - 1 : 100);
}

function socketRow(s: Socket): string {
  return `${s.state.padEnd(11)} ${formatEndpoint(s.local)} -> ${formatEndpoint(s.peer)}`;
}

/** Both sides' sockets next to each other, like two terminals running netstat. */
export function sideBySide(observed: Map<NodeName, Socket[]>, style: Style, highlight: (s: Socket) => boolean = () => false): string {
  const order = ['client', 'firewall', 'server'];
  const nodes = [...observed.keys()].sort((a, b) => order.indexOf(a) - order.indexOf(b));
  const width = Math.min(64, Math.max(24, ...[...observed.values()].flat().map((s) => socketRow(s).length)));
  const cols = nodes.map((n) => {
    const socks = observed.get(n)!;
    const rows = socks.length ? socks.map((s) => ({ text: socketRow(s), hot: highlight(s) })) : [{ text: '(no TCP sockets)', hot: false }];
    return [{ text: `${n}$ ss -tan`, hot: false }, ...rows];
  });
  const height = Math.max(...cols.map((c) => c.length));
  const lines: string[] = [];
  for (let i = 0; i < height; i++) {
    lines.push(
      '    ' +
        cols
          .map((c, k) => {
            const cell = c[i];
            const text = (cell?.text ?? '').slice(0, width);
            const padded = k === cols.length - 1 ? text : text.padEnd(width);
            return i === 0 ? style.bold(padded) : cell?.hot ? style.yellow(padded) : padded;
          })
          .join(style.dim(' │ ')),
    );
  }
  return lines.join('\n');
}

export function makePlainRenderer(
  write: (s: string) => void,
  style: Style,
  opts: { verbose: boolean; totalSteps?: number; width?: number },
) {
  let observed = new Map<NodeName, Socket[]>();
  return (e: LabEvent) => {
    switch (e.type) {
      case 'image':
        if (e.phase === 'building') write(style.dim(`building the lab image ${e.tag} (first use; later runs reuse it)`));
        if (e.phase === 'built') write(style.dim(`built ${e.tag}`));
        break;
      case 'image-line':
        // The build's own steps, so a first run that takes a minute shows where it is.
        if (/^Step \d+\/\d+/.test(e.line)) write(style.dim(`  ${e.line}`));
        break;
      case 'node':
        if (opts.verbose) write(style.dim(`  ${e.node.padEnd(8)} ${e.ips.join(', ')}`));
        break;
      case 'ready':
        if (opts.verbose) write(style.dim(`  lab instance ${e.instance} ready in ${formatDuration(e.ms)}`));
        break;
      case 'step':
        if (!opts.verbose) break;
        observed = new Map();
        write('');
        write(style.bold(`Step ${e.index + 1}${opts.totalSteps ? `/${opts.totalSteps}` : ''}: ${e.title}`));
        for (const line of e.explain.trimEnd().split('\n')) write(`  ${line}`);
        break;
      case 'action':
        if (!opts.verbose) break;
        write(`  ${style.cyan(`${e.node}$`)} ${e.display}`);
        if (e.output) for (const line of e.output.split('\n').slice(-6)) write(style.dim(`    ${line}`));
        break;
      case 'check':
        if (opts.verbose) write(renderCheck(e.check, style));
        break;
      case 'observed':
        observed.set(e.node, e.sockets);
        break;
      case 'ladder':
        // The segments of the step, with each side's states between them (plain text, whatever the style).
        if (!opts.verbose || eventsIn(e.timeline, e.from, e.to).length === 0) break;
        write('');
        write(style.bold('  On the wire:'));
        for (const line of renderLadder(e.timeline, { width: (opts.width ?? 100) - 2, from: e.from, to: e.to, maxRows: 60 })
          .trimEnd()
          .split('\n'))
          write(`  ${line}`);
        break;
      case 'step-done':
        if (opts.verbose && observed.size) write(sideBySide(observed, style));
        break;
      case 'warning':
        write(style.yellow(`warning: ${e.message}`));
        break;
      default:
        break;
    }
  };
}
