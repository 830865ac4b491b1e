// Text a student reads: wrapped at spaces to their terminal (never mid-word, indentation kept), prose from lab
// files reflowed, prediction choices in a stable order of the student's own, and the command they can type.
import { describe, expect, it } from 'vitest';
import stripAnsi from 'strip-ansi';
import { reflow, wrapLine, wrapText } from '../../src/cli/wrap.js';
import { choiceKeys, shuffled } from '../../src/walk/shuffle.js';
import { labCommandFor } from '../../src/cli/invocation.js';
import { sideBySide } from '../../src/cli/render.js';
import { makeStyle } from '../../src/report/style.js';
import { parseSs } from '../../src/observe/ss.js';
import type { NodeName } from '../../src/lab/schema.js';

const prose =
  'The rule matches segments whose only flag is ACK (no SYN, FIN, RST or PSH), going out to port 5555: exactly the last segment of the handshake.';

describe('wrapping to the terminal', () => {
  it('breaks a long line at spaces only, every piece within the width', () => {
    const lines = wrapLine(`  ${prose}`, 40);
    expect(lines.length).toBeGreaterThan(3);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(40);
    // Nothing lost, nothing cut: the words are the same words, in order.
    expect(lines.map((l) => l.trim()).join(' ')).toBe(prose);
  });

  it('keeps the indentation, and hangs continuation lines under the text after a label', () => {
    const [first, second] = wrapLine(`    seen: ${prose}`, 50);
    expect(first!.startsWith('    seen: The')).toBe(true);
    expect(second).toMatch(/^ {10}\S/);
    const check = wrapLine(`  ✗ not met [task] client: ${prose}`, 50);
    expect(check[1]).toMatch(/^ {12}\S/);
    // Prose continues under its first word.
    expect(wrapLine(`  ${prose}`, 50)[1]).toMatch(/^ {2}\S/);
  });

  it('measures colour codes as taking no room, and keeps them', () => {
    const red = (s: string) => `\u001b[31m${s}\u001b[39m`;
    const line = `  ${red('✗ not met')} ${prose}`;
    const lines = wrapLine(line, 60);
    for (const l of lines) expect(stripAnsi(l).length).toBeLessThanOrEqual(60);
    expect(lines[0]).toContain(red('✗ not met'));
  });

  it("never breaks a line between a lab's number and its name, nor inside a short command", () => {
    const text = 'This shell ended because Lab 7 (fin-wait-1) finished in its `npx lab start`, which removed its machines.';
    for (let width = 20; width <= text.length; width++) {
      const lines = wrapLine(text, width);
      expect(lines.join(' ')).toBe(text);
      expect(
        lines.some((l) => l.includes('Lab 7 (fin-wait-1)')),
        `at ${width} columns: ${lines.join(' | ')}`,
      ).toBe(true);
    }
    const head = wrapLine('instance 9ed2d1ac  Lab 7 fin-wait-1, step 5/5: Your task: hold the server in FIN_WAIT_1', 32);
    expect(head.some((l) => l.includes('Lab 7 fin-wait-1,'))).toBe(true);
    expect(wrapLine(`  ${prose} Lab 12: Half-open`, 40).some((l) => l.includes('Lab 12: Half-open'))).toBe(true);
    // Nor in the middle of a short command to type.
    const work = '  Work in `npx lab shell <machine>` (here from the menu, or in another terminal), then `npx lab check`.';
    for (let width = 40; width <= work.length; width++)
      expect(
        wrapLine(work, width).some((l) => l.includes('`npx lab check`')),
        `at ${width} columns`,
      ).toBe(true);
  });

  it('leaves a word wider than the line whole, on a line of its own', () => {
    const word = 'x'.repeat(30);
    expect(wrapLine(`short ${word} end`, 20)).toEqual(['short', word, 'end']);
  });

  it('leaves text alone when there is no terminal', () => {
    expect(wrapText(prose, undefined)).toBe(prose);
  });

  it('reflows lab prose into paragraphs but keeps list items and commands as lines', () => {
    const text = 'first line of a\nparagraph that goes on\n\nsecond paragraph\n- an item\n- another\n$ nc -l 5555\n';
    expect(reflow(text)).toBe('first line of a paragraph that goes on\n\nsecond paragraph\n- an item\n- another\n$ nc -l 5555');
  });
});

describe('two machines side by side, or one under the other', () => {
  const socks = new Map<NodeName, ReturnType<typeof parseSs>>([
    ['client', parseSs('SYN-SENT 0 1 198.19.214.2:57068 198.19.214.3:5555 timer:(on,1.692ms,1)')],
    ['server', parseSs('LISTEN 0 1 0.0.0.0:5555 0.0.0.0:*')],
  ]);
  const plain = makeStyle(false);

  it('puts the columns next to each other when they fit', () => {
    const out = sideBySide(socks, plain, undefined, 200);
    expect(out.split('\n')[1]).toMatch(/SYN_SENT .* │ LISTEN/);
  });

  it('stacks the machines when the columns would not fit in 80 columns', () => {
    const wide = sideBySide(socks, plain);
    expect(Math.max(...wide.split('\n').map((l) => l.length))).toBeGreaterThan(80);
    const out = sideBySide(socks, plain, undefined, 80);
    for (const l of out.split('\n')) expect(l.length).toBeLessThanOrEqual(80);
    expect(out).toMatch(/client\$ ss -tan\n {4}SYN_SENT .*\n {4}server\$ ss -tan\n {4}LISTEN/);
  });
});

describe('prediction choices', () => {
  const choices = ['SYN_SENT and LISTEN', 'SYN_SENT and SYN_RECV', 'ESTABLISHED and LISTEN', 'nothing and LISTEN'];

  it('come in the same order for the same student and step (a re-run is stable)', () => {
    expect(shuffled(choices, 'ana:incomplete-handshake:connect-dropped')).toEqual(
      shuffled(choices, 'ana:incomplete-handshake:connect-dropped'),
    );
  });

  it('are all there, and come in different orders for different students', () => {
    const orders = new Set(['ana', 'ben', 'chloe', 'dev', 'eli', 'fay'].map((u) => shuffled(choices, `${u}:lab:step`).join('|')));
    for (const o of orders) expect(o.split('|').sort()).toEqual([...choices].sort());
    expect(orders.size).toBeGreaterThan(2);
  });

  it('do not put the answer first for everybody', () => {
    const firsts = new Set(Array.from({ length: 20 }, (_, i) => shuffled(choices, `student${i}:lab:step`)[0]));
    expect(firsts.size).toBeGreaterThan(1);
  });

  it('are typed as letters', () => {
    expect(choiceKeys(4)).toEqual(['a', 'b', 'c', 'd']);
  });
});

describe('the command a student can type', () => {
  const ours = '/home/ana/tcplab/bin/lab.js';
  const files: Record<string, string> = {
    [ours]: ours,
    '/usr/local/bin/lab': ours,
    '/opt/other/bin/lab': '/opt/other/lib/node_modules/tcplab/bin/lab.js',
  };
  const realpath = (p: string) => files[p];
  const inv = (over: Partial<Parameters<typeof labCommandFor>[0]>) =>
    labCommandFor({ script: ours, env: { PATH: '/usr/bin:/bin' }, cwd: '/home/ana/tcplab', realpath, ...over }, ours);

  it('is `lab` when the lab on the PATH is this tcplab (npm install -g)', () => {
    expect(inv({ script: '/usr/local/bin/lab', env: { PATH: '/usr/bin:/usr/local/bin' } })).toBe('lab');
  });

  it('is not `lab` when the lab on the PATH is another one', () => {
    expect(inv({ env: { PATH: '/opt/other/bin:/usr/local/bin' } })).toBe('node bin/lab.js');
  });

  it('is `npx lab` when npx started it', () => {
    expect(inv({ script: '/root/.npm/_npx/abc/node_modules/.bin/lab', env: { PATH: '/usr/bin', npm_command: 'exec' } })).toBe('npx lab');
  });

  it('is `npx lab` under npx even though npx put a `lab` that is this tcplab at the front of the PATH', () => {
    // What `npx lab start 7` in a clone gets: npm links the clone into its cache and puts the cache's .bin first.
    const cache = '/root/.npm/_npx/3513fdd5/node_modules/.bin';
    files[`${cache}/lab`] = ours;
    const path = [
      cache,
      '/home/ana/tcplab/node_modules/.bin',
      '/usr/lib/node_modules/npm/node_modules/@npmcli/run-script/lib/node-gyp-bin',
      '/usr/bin',
    ];
    expect(inv({ script: `${cache}/lab`, env: { PATH: path.join(':'), npm_command: 'exec', npm_lifecycle_event: 'npx' } })).toBe('npx lab');
    // Installed with npm install -g as well: `lab` works in any terminal, and is the shorter.
    expect(inv({ script: `${cache}/lab`, env: { PATH: [...path, '/usr/local/bin'].join(':'), npm_command: 'exec' } })).toBe('lab');
    // Without npx, a node_modules/.bin on the PATH is the student's own choice, and counts.
    files['/home/ana/tcplab/node_modules/.bin/lab'] = ours;
    expect(inv({ env: { PATH: '/home/ana/tcplab/node_modules/.bin:/usr/bin' } })).toBe('lab');
  });

  it('is the node command as typed otherwise: relative inside the folder, absolute outside', () => {
    expect(inv({})).toBe('node bin/lab.js');
    expect(inv({ cwd: '/tmp' })).toBe(`node ${ours}`);
  });
});

describe('wrapping keeps what aligns', () => {
  it('keeps runs of spaces inside a line (the padding after ✓ met)', () => {
    const line = `  ✓ met     [task] client: ${prose}`;
    const lines = wrapLine(line, 60);
    expect(lines[0]).toMatch(/^ {2}✓ met {5}\[task\] client:/);
    expect(lines[1]).toMatch(/^ {12}\S/);
  });
});
