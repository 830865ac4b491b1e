// A student's terminal for tests: a tmux server of the test's own (its socket), windows in one session "ui",
// keys typed with send-keys and screens read with capture-pane. Every wait polls the screen with a deadline.
import { execFileSync, spawnSync } from 'node:child_process';

export const haveTmux = spawnSync('tmux', ['-V']).status === 0;

/**
 * The environment of a student's terminal: no colour overrides, not inside tmux already, and not started by npm
 * (npx sets npm_* variables, and tcplab would rightly name `npx lab` as the command to type).
 */
export function studentEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = { ...process.env, TERM: 'xterm-256color', PS1: '$ ', LANG: 'C.UTF-8', ...extra } as NodeJS.ProcessEnv;
  for (const k of Object.keys(env)) if (k.startsWith('npm_')) delete env[k];
  delete env.NO_COLOR;
  delete env.FORCE_COLOR;
  delete env.TMUX;
  return env;
}

/** How often a needle occurs in a text (a RegExp counts every match). */
export function count(text: string, needle: string | RegExp): number {
  if (typeof needle === 'string') return text.split(needle).length - 1;
  return (text.match(new RegExp(needle.source, needle.flags.includes('g') ? needle.flags : needle.flags + 'g')) ?? []).length;
}

export const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A tmux server of the test's own, by its socket name; every function is free-standing (destructure them). */
export function terminal(socket: string, env: NodeJS.ProcessEnv) {
  let seq = 0;
  const shell = "env PS1='$ ' bash --norc --noprofile";
  const tmux = (...args: string[]): string => execFileSync('tmux', ['-L', socket, ...args], { env, encoding: 'utf8' });
  const newWindow = (name: string, cwd?: string): void =>
    void tmux('new-window', '-t', 'ui', '-n', name, ...(cwd ? ['-c', cwd] : []), shell);
  /** Everything the window has shown (scrollback included), lines the terminal wrapped joined again. */
  const screen = (win: string): string => tmux('capture-pane', '-p', '-J', '-S', '-5000', '-t', `ui:${win}`);
  /** Keys, as tmux names them ('Enter', 'Down', 'C-c') or letters. */
  const type = (win: string, ...keys: string[]): void => void tmux('send-keys', '-t', `ui:${win}`, ...keys);
  /** A line of text typed literally, then Enter. */
  const typeLine = (win: string, text: string): void => {
    tmux('send-keys', '-t', `ui:${win}`, '-l', text);
    tmux('send-keys', '-t', `ui:${win}`, 'Enter');
  };
  /** Poll a window until `needle` has appeared `times` times (default once), or fail showing the screen. */
  const until = async (win: string, needle: string | RegExp, opts: { times?: number; ms?: number } = {}): Promise<string> => {
    const deadline = Date.now() + (opts.ms ?? 30_000);
    for (;;) {
      const text = screen(win);
      if (count(text, needle) >= (opts.times ?? 1)) return text;
      if (Date.now() > deadline)
        throw new Error(
          `timed out waiting for ${String(needle)} in window ${win}; the screen:\n${text.trimEnd().split('\n').slice(-40).join('\n')}`,
        );
      await pause(100);
    }
  };
  return {
    tmux,
    newWindow,
    screen,
    type,
    typeLine,
    until,
    /** The session "ui" with its first window, and a window for each of `more`, each a bare bash. */
    open(first: string, more: string[], opts: { cwd?: string; width?: number; height?: number } = {}): void {
      const cwd = opts.cwd ? ['-c', opts.cwd] : [];
      tmux('new-session', '-d', '-s', 'ui', '-n', first, ...cwd, '-x', String(opts.width ?? 200), '-y', String(opts.height ?? 60), shell);
      for (const name of more) newWindow(name, opts.cwd);
    },
    /** Run a command at a shell prompt; wait for its own end marker; its output and exit status. */
    async command(win: string, cmd: string, ms = 90_000): Promise<{ out: string; code: number }> {
      const mark = `@@${++seq}@@`;
      typeLine(win, `${cmd}; echo ${mark} EXIT=$?`);
      const done = new RegExp(`${mark} EXIT=(\\d+)`);
      const text = await until(win, done, { ms });
      return { out: text.slice(text.indexOf(`${mark} EXIT=$?`), text.search(done)), code: Number(done.exec(text)![1]) };
    },
    kill(): void {
      spawnSync('tmux', ['-L', socket, 'kill-server'], { env });
    },
  };
}
