// From a machine's shell log to a task's answer: what lab submit hands in.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseShellLog, taskAnswer, taskCommands, taskTimeline, templatize, type ShellCommand } from '../../src/submit/record.js';
import type { NodeName } from '../../src/lab/schema.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/shell/${name}`, import.meta.url), 'utf8');

describe('the shell log the image keeps', () => {
  it('parses start and end records, exit codes and the escapes for backslashes and newlines', () => {
    const cmds = parseShellLog(fixture('one-shell.log'));
    expect(cmds.map((c) => c.text)).toEqual([
      'echo hello',
      'ls /nonexist',
      'for i in 1 2; do echo $i; done',
      'echo "a\\\\b"; echo   continued',
      'sleep 0.3',
    ]);
    expect(cmds[1]).toMatchObject({ exit: 2, key: '77:2' });
    expect(cmds[4]!.endedAt! - cmds[4]!.at).toBeGreaterThan(250);
    // The user's own backslash-n stays two characters; the log's \n is a line break of a multi-line command.
    expect(parseShellLog("S 1.5 1:1 printf 'a\\\\nb'\\nsecond line\n")[0]!.text).toBe("printf 'a\\nb'\nsecond line");
  });

  it('skips torn or foreign lines', () => {
    expect(parseShellLog('garbage\nS 12 x:1 no\nS 3.0 1:1 ok\nE 4.0 9:9 0\n').map((c) => c.text)).toEqual(['ok']);
  });
});

describe('the commands of a task', () => {
  const two = parseShellLog(fixture('two-shells.log'));
  const from = two[0]!.at;

  it('keeps what started inside the window, in order, without leaving the shell', () => {
    expect(taskCommands(two, from, two[3]!.at + 1)).toEqual([
      'iptables -S OUTPUT >/dev/null',
      // nc -l was still running when the other shell's command started: in one script it must not block it.
      'nc -l 5600 &',
      'echo hi | nc -q0 127.0.0.1 5600',
    ]);
    expect(taskCommands(two, two[2]!.at, Infinity)).toEqual(['echo hi | nc -q0 127.0.0.1 5600', 'echo done']);
    expect(taskCommands(two, 0, from - 1)).toEqual([]);
  });

  it('a command still running at the end of the task stays in the foreground when nothing follows it', () => {
    const running: ShellCommand[] = [
      { at: 1000, endedAt: 1010, exit: 0, key: '1:1', text: 'iptables -A OUTPUT -p tcp --dport 5556 -j DROP' },
      { at: 2000, key: '1:2', text: 'nc 198.19.4.3 5556' },
    ];
    expect(taskCommands(running, 0, 3000)).toEqual(running.map((c) => c.text));
  });

  it('puts a line that ends in ; or | in a group rather than making it invalid shell', () => {
    const cmds: ShellCommand[] = [
      { at: 1, key: '1:1', text: 'nc -l 5600;' },
      { at: 2, key: '2:1', endedAt: 3, text: 'true' },
      { at: 4, key: '2:2', endedAt: 5, text: 'sleep 9 &' },
      { at: 5, key: '2:3', endedAt: 6, text: 'x' },
    ];
    expect(taskCommands(cmds, 0, 10)).toEqual(['{ nc -l 5600;\n} &', 'true', 'sleep 9 &', 'x']);
  });
});

describe('addresses back into templates', () => {
  const vars = {
    'client.ip': '198.19.4.2',
    'client.ip.lan': '198.19.4.2',
    'server.ip': '198.19.4.3',
    'server.ip.lan': '198.19.4.3',
    'net.lan': '198.19.4.0/24',
    'variant.port': '5637',
  };

  it('uses the shortest name, leaves longer numbers and variants alone', () => {
    expect(templatize('nc 198.19.4.3 5637; ping 198.19.4.30; x 198.19.4.2:80 198.19.4.0/24 1198.19.4.3', vars)).toBe(
      'nc {{server.ip}} 5637; ping 198.19.4.30; x {{client.ip}}:80 {{net.lan}} 1198.19.4.3',
    );
  });

  it('orders machines by their first command of the task', () => {
    const logs = new Map([
      ['client', [{ at: 20, endedAt: 21, key: '1:1', text: 'echo hi | nc -q0 198.19.4.3 5637' }]],
      ['server', [{ at: 10, endedAt: 30, key: '2:1', text: 'nc -l 5637' }]],
    ] as const);
    const answer = taskAnswer(new Map(logs as never), 0, 100, vars);
    expect(answer.map((a) => [a.node, a.lines])).toEqual([
      ['server', ['nc -l 5637']],
      ['client', ['echo hi | nc -q0 {{server.ip}} 5637']],
    ]);
  });
});

describe('the timeline of a task, across machines', () => {
  const vars = { 'server.ip': '198.18.7.3', 'client.ip': '198.18.6.2', 'variant.port': '5637' };
  const logs = (byNode: Partial<Record<NodeName, string>>) =>
    new Map(Object.entries(byNode).map(([node, text]) => [node as NodeName, parseShellLog(text!)]));

  // Lab 7 as a student does it in three terminals: the rule, the listener, the client, then Ctrl-C on the server
  // (bash reports 130), a lab check that passes at 1000.20; the client's nc still runs.
  const lab7 = logs({
    firewall: [
      'S 1000.000 40:1 iptables -A FORWARD -s 198.18.7.3 -p tcp --sport 5556 --tcp-flags FIN FIN -j DROP',
      'E 1000.012 40:1 0',
      'S 1021.000 40:2 exit',
    ].join('\n'),
    server: ['S 1006.213 50:1 nc -l 5556', 'E 1019.804 50:1 130', 'S 1030.000 50:2 ss -tn'].join('\n'),
    client: ['S 1012.507 60:1 nc 198.18.7.3 5556'].join('\n'),
  });

  it('is every command in the order started, with when, and how it ended: exit, Ctrl-C, or still running', () => {
    expect(taskTimeline(lab7, 999_000, 1_020_200, vars)).toEqual([
      {
        node: 'firewall',
        command: 'iptables -A FORWARD -s {{server.ip}} -p tcp --sport 5556 --tcp-flags FIN FIN -j DROP',
        at: 0,
        end: { by: 'exit', exit: 0, at: 12 },
      },
      { node: 'server', command: 'nc -l 5556', at: 6213, end: { by: 'ctrl-c', at: 19_804 } },
      { node: 'client', command: 'nc {{server.ip}} 5556', at: 12_507 },
    ]);
  });

  it('what ended after the check that passed is still running; what started after it, or before the task, is not there', () => {
    const t = taskTimeline(lab7, 1_005_000, 1_015_000, vars);
    expect(t.map((e) => [e.node, e.command, e.at, e.end])).toEqual([
      ['server', 'nc -l 5556', 0, undefined],
      ['client', 'nc {{server.ip}} 5556', 6294, undefined],
    ]);
  });

  it('a job stopped with Ctrl-Z ends as its fg did; one sent on with bg, or left stopped, still runs', () => {
    const t = taskTimeline(
      logs({
        server: [
          'S 1.0 7:1 nc -l 5556',
          'E 2.0 7:1 148', // Ctrl-Z: stopped, the prompt is back
          'S 3.0 7:2 fg',
          'E 9.0 7:2 130', // the job in the foreground again, and Ctrl-C ends it
          'S 10.0 7:3 nc -l 5557',
          'E 11.0 7:3 148',
          'S 12.0 7:4 bg %1',
          'E 12.1 7:4 0',
          'S 13.0 7:5 sleep 60',
          'E 14.0 7:5 148',
          'S 15.0 7:6 logout',
        ].join('\n'),
      }),
      0,
      100_000,
      vars,
    );
    expect(t.map((e) => [e.command, e.at, e.end])).toEqual([
      ['nc -l 5556', 0, { by: 'ctrl-c', at: 8000 }],
      ['nc -l 5557', 9000, undefined],
      ['sleep 60', 12_000, undefined],
    ]);
  });

  it('an fg with no job of its own is a command like any other', () => {
    const t = taskTimeline(logs({ client: 'S 1.0 7:1 fg\nE 1.1 7:1 1' }), 0, 10_000, vars);
    expect(t).toEqual([{ node: 'client', command: 'fg', at: 0, end: { by: 'exit', exit: 1, at: 100 } }]);
  });
});
