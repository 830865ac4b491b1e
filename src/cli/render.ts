// Plain-text rendering of engine events, for `lab start` off a TTY and for `lab grade` progress.
import type { LabEvent } from '../engine/events.js';
import type { NodeName } from '../lab/schema.js';
import { formatDuration } from '../lab/duration.js';
import { formatEndpoint, type Socket } from '../observe/ss.js';
import { renderCheck } from '../report/text.js';
import type { Style } from '../report/style.js';
import { reflow } from './wrap.js';
import { renderLadder } from '../report/ladder-text.js';
import { eventsIn } from '../trace/timeline.js';

/** The ladder fits the terminal; off a terminal (a pipe, a log), 100 columns. */
export function ladderWidth(columns: number | undefined): number {
  return Math.min(160, columns && columns > 0 ? columns - 1 : 100);
}

function socketRow(s: Socket): string {
  return `${s.state.padEnd(11)} ${formatEndpoint(s.local)} -> ${formatEndpoint(s.peer)}`;
}

/**
 * Both sides' sockets next to each other, like two terminals running netstat; when the columns do not fit in
 * `width` (an 80-column terminal, a routed lab's three machines), one machine under the other instead.
 */
export function sideBySide(
  observed: Map<NodeName, Socket[]>,
  style: Style,
  highlight: (s: Socket) => boolean = () => false,
  width?: number,
): string {
  const order = ['client', 'firewall', 'server'];
  const nodes = [...observed.keys()].sort((a, b) => order.indexOf(a) - order.indexOf(b));
  const cols = nodes.map((n) => {
    const socks = observed.get(n)!;
    const rows = socks.length ? socks.map((s) => ({ text: socketRow(s), hot: highlight(s) })) : [{ text: '(no TCP sockets)', hot: false }];
    return [{ text: `${n}$ ss -tan`, hot: false }, ...rows];
  });
  const colWidth = Math.min(64, Math.max(24, ...cols.flat().map((c) => c.text.length)));
  const cell = (c: { text: string; hot: boolean }, head: boolean, text: string) =>
    head ? style.bold(text) : c.hot ? style.yellow(text) : text;
  if (width !== undefined && 4 + cols.length * colWidth + (cols.length - 1) * 3 > width) {
    // One machine after another, each row cut to the width (an address never wraps into the next row).
    return cols.map((c) => c.map((x, i) => cell(x, i === 0, `    ${x.text}`.slice(0, width))).join('\n')).join('\n');
  }
  const height = Math.max(...cols.map((c) => c.length));
  const lines: string[] = [];
  for (let i = 0; i < height; i++) {
    lines.push(
      '    ' +
        cols
          .map((c, k) => {
            const x = c[i];
            const text = (x?.text ?? '').slice(0, colWidth);
            const padded = k === cols.length - 1 ? text : text.padEnd(colWidth);
            return cell(x ?? { text: '', hot: false }, i === 0, padded);
          })
          .join(style.dim(' │ ')),
    );
  }
  return lines.join('\n');
}

export function makePlainRenderer(
  write: (s: string) => void,
  style: Style,
  /** width: the ladder's; columns: the terminal's, when there is one (the machines' sockets stack to fit it). */
  opts: { verbose: boolean; totalSteps?: number; width?: number; columns?: number },
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
        for (const line of reflow(e.explain).split('\n')) write(`  ${line}`);
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
        if (opts.verbose && observed.size) write(sideBySide(observed, style, undefined, opts.columns));
        break;
      case 'warning':
        write(style.yellow(`warning: ${e.message}`));
        break;
      default:
        break;
    }
  };
}
