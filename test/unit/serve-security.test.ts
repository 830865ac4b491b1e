// lab serve's security on the wire, against the real server and hub with an in-memory engine: every call and
// WebSocket is authenticated, a student reaches only their own lab and terminals by any URL or message, changes
// need the session's CSRF token and this server's Origin, joining is rate-limited, the pages carry lab ui's CSP;
// and a terminal outlives its socket (the screen is replayed to a page that comes back).
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { catalogue } from '../../src/lab/catalogue.js';
import type { TerminalOptions, TerminalSession } from '../../src/runtime/runtime.js';
import { ClassClient } from '../../src/bench/class-client.js';
import { defaultClass } from '../../src/serve/class-file.js';
import { Classroom } from '../../src/serve/classroom.js';
import { startClassServer, type ClassServer } from '../../src/serve/server.js';
import { Store } from '../../src/serve/store.js';
import { RateLimit, originAllowed } from '../../src/serve/auth.js';
import { RingBuffer } from '../../src/serve/terminal.js';
import { FakeRuntime } from '../reliability/fake-runtime.js';

/** The engine, in memory, with terminals that echo what is typed (as a shell's line discipline would). */
class TerminalRuntime extends FakeRuntime {
  opened: string[] = [];
  async openTerminal(container: string, _argv: string[], _opts: TerminalOptions): Promise<TerminalSession> {
    this.opened.push(container);
    let data: (b: Uint8Array) => void = () => {};
    const closers: (() => void)[] = [];
    setTimeout(() => data(Buffer.from(`root@${container}:/# `)), 5);
    return {
      write: (d) => data(Buffer.from(typeof d === 'string' ? d : Buffer.from(d))),
      resize: async () => {},
      onData: (fn) => (data = fn),
      onClose: (fn) => closers.push(fn),
      close: () => closers.forEach((f) => f()),
    };
  }
}

const dir = mkdtempSync(join(tmpdir(), 'tcplab-serve-sec-'));
const runtime = new TerminalRuntime();
let server: ClassServer;
let classroom: Classroom;
let store: Store;
let base = '';
const CODE = 'ABCDEFGH';

beforeAll(async () => {
  const cls = { ...defaultClass(dir), roster: [{ id: 'alice', name: 'Alice' }], joinCode: CODE };
  store = new Store(dir);
  const labs = catalogue().filter((l) => l.lab.id === 1);
  classroom = new Classroom({ runtime, config: cls, labs, image: 'fake', store, version: 'test' });
  server = await startClassServer({ host: '127.0.0.1', port: 0, classroom, store, joinCode: CODE });
  base = server.url;
});

afterAll(async () => {
  await classroom?.stopAll();
  await classroom?.close();
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function status(path: string, init: RequestInit = {}): Promise<number> {
  return (await fetch(new URL(path, base), { redirect: 'manual', ...init })).status;
}

function wsStatus(path: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(new URL(path, base.replace('http', 'ws')), { headers });
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.once('error', () => resolve(-1));
  });
}

describe('lab serve, on the wire', () => {
  let alice: ClassClient;
  let mallory: ClassClient;

  it('lets a roster student in by their personal link only, and the instructor by theirs', async () => {
    alice = new ClassClient(base);
    await alice.link(`${base}j/${store.linkSecret('alice')}`);
    expect(alice.state?.student.id).toBe('alice');
    expect(await status(`/j/${'x'.repeat(43)}`)).toBe(404);
    expect(await status('/j/short')).toBe(404);
    expect(await status(`/t/${'y'.repeat(43)}`)).toBe(404);
    expect(await status(`/t/${store.teacherSecret}`)).toBe(303);
    // Nobody signed in: no call answers, every page but the join page is refused.
    for (const p of ['/api/me', '/api/me/events', '/api/class', '/api/class/students/alice/state', '/api/class/gradebook/basic-states.csv'])
      expect(await status(p), p).toBe(401);
    expect(await status('/dashboard')).toBe(401);
    expect(await status('/watch/alice')).toBe(401);
  });

  it('keeps secrets and sessions on disk for the instructor only, sessions as hashes', () => {
    expect(statSync(join(dir, 'secrets.json')).mode & 0o777).toBe(0o600);
    store.flushSessions();
    expect(statSync(join(dir, 'sessions.json')).mode & 0o777).toBe(0o600);
    const text = JSON.stringify(store);
    expect(text).not.toContain(alice.cookie.split('=')[1]);
  });

  it('lets a student join with the code and a name, and refuses a wrong code, another site and too many tries', async () => {
    mallory = new ClassClient(base);
    await mallory.join(CODE, 'Mallory');
    expect(mallory.state?.student.id).toMatch(/^mallory-[0-9a-f]{4}$/);
    const evil = await fetch(new URL('/api/join', base), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Origin: 'http://evil.example' },
      body: JSON.stringify({ code: CODE, name: 'x' }),
    });
    expect(evil.status).toBe(403);
    const tries: number[] = [];
    for (let i = 0; i < 12; i++)
      tries.push(
        (
          await fetch(new URL('/api/join', base), {
            method: 'POST',
            headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify({ code: 'WRONGCODE', name: 'x' }),
          })
        ).status,
      );
    expect(tries.slice(0, 8).every((s) => s === 403)).toBe(true);
    expect(tries.at(-1)).toBe(429);
  });

  it("gives a student their own lab and terminals, and no URL or message reaches another student's", async () => {
    await alice.must('/api/me/start', { slug: 'basic-states' });
    await alice.until('alice running', (s) => s.current?.status === 'running', 20_000);
    const term = await alice.terminal('client');
    await term.until(/root@tcplab-\w+-client:\/# /);
    term.type('echo hi\r');
    await term.until(/echo hi/);
    // Mallory has no lab: her terminal URL finds none, and naming Alice anywhere changes nothing.
    const m = { Origin: new URL(base).origin, Cookie: mallory.cookie };
    expect(await wsStatus('/ws/term?node=client', m)).toBe(404);
    expect(await wsStatus('/ws/term?node=client&student=alice', m)).toBe(404);
    expect(await wsStatus('/ws/watch?student=alice&node=client', m)).toBe(401);
    for (const p of ['/api/class/students/alice/state', '/api/class/students/alice/live', '/api/class/students/alice/events'])
      expect(await status(p, { headers: { Cookie: mallory.cookie } }), p).toBe(401);
    expect(await status('/watch/alice', { headers: { Cookie: mallory.cookie } })).toBe(401);
    const stopAlice = await fetch(new URL('/api/class/students/alice/stop', base), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Cookie: mallory.cookie, 'X-CSRF-Token': mallory.csrf },
      body: '{}',
    });
    expect(stopAlice.status).toBe(401);
    // Her own calls act on her own (absent) lab; a body naming Alice is ignored.
    expect((await mallory.post('/api/me/stop', { student: 'alice' })).status).toBe(200);
    expect((await mallory.post('/api/me/walk', { type: 'next', student: 'alice' })).status).toBe(409);
    await mallory.me();
    expect(mallory.state?.current).toBeUndefined();
    expect((await alice.me()).current?.status).toBe('running');
    // Alice's own socket, with Mallory's cookie added to nothing: a cookie-less socket is refused.
    expect(await wsStatus('/ws/term?node=client', { Origin: new URL(base).origin })).toBe(401);
    // Another site's page cannot open Alice's terminal with her cookie, nor act for her.
    expect(await wsStatus('/ws/term?node=client', { Origin: 'http://evil.example', Cookie: alice.cookie })).toBe(403);
    const forged = await fetch(new URL('/api/me/stop', base), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Cookie: alice.cookie, Origin: 'http://evil.example', 'X-CSRF-Token': alice.csrf },
      body: '{}',
    });
    expect(forged.status).toBe(403);
    const noToken = await fetch(new URL('/api/me/stop', base), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Cookie: alice.cookie },
      body: '{}',
    });
    expect(noToken.status).toBe(403);
    // A form post (no JSON) never changes anything.
    expect(await status('/api/me/stop', { method: 'POST', headers: { Cookie: alice.cookie, 'X-CSRF-Token': alice.csrf } })).toBe(415);
    expect((await alice.me()).current?.status).toBe('running');
    term.close();
  });

  it('replays the screen to a page that comes back: the same shell, not a new one', async () => {
    const opened = runtime.opened.length;
    const again = await alice.terminal('client');
    await again.until(/echo hi/);
    expect(again.controls[0]?.type).toBe('reset');
    again.type('echo back\r');
    await again.until(/echo back/);
    expect(runtime.opened.length).toBe(opened);
    again.close();
  });

  it('serves pages with the CSP of lab ui (a style nonce for xterm.js), cookies HttpOnly and SameSite', async () => {
    const r = await fetch(base, { headers: { Cookie: alice.cookie } });
    const policy = r.headers.get('content-security-policy') ?? '';
    expect(policy).toMatch(
      /^default-src 'none'; script-src 'self'; style-src 'self' 'nonce-[A-Za-z0-9+/=]+'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'$/,
    );
    expect(await r.text()).toContain(`content="${/nonce-([^']+)/.exec(policy)![1]}"`);
    const link = await fetch(`${base}j/${store.linkSecret('alice')}`, { redirect: 'manual' });
    expect(link.headers.get('set-cookie')).toMatch(/^tcplab-student=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Lax$/);
    expect((await fetch(new URL('/vendor/xterm.mjs', base))).status).toBe(200);
    expect(await status('/../package.json')).toBe(404);
    // A name this loopback server is not: a DNS-rebinding page is refused.
    const rebound = await new Promise<number>((resolve) => {
      const u = new URL(base);
      get({ host: u.hostname, port: u.port, path: '/', headers: { Host: 'evil.example' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
    });
    expect(rebound).toBe(421);
  });

  it("stops a lab on the instructor's word, and the student is told", async () => {
    await classroom.stop('alice', 'teacher');
    const s = await alice.me();
    expect(s.current).toBeUndefined();
    expect(s.notice).toMatch(/Your instructor stopped Lab 1/);
    expect([...runtime.containers.keys()]).toEqual([]);
  });
});

describe('the pieces', () => {
  it('a ring buffer keeps the last bytes and counts the rest', () => {
    const r = new RingBuffer(10);
    r.push(Buffer.from('hello '));
    r.push(Buffer.from('world!'));
    expect(r.contents().toString()).toBe('llo world!');
    expect(r.dropped).toBe(2);
    r.push(Buffer.from('0123456789abc'));
    expect(r.contents().toString()).toBe('3456789abc');
  });

  it('a rate limit counts per key and in all, in a sliding window', () => {
    let t = 0;
    const rl = new RateLimit(2, 3, 1000, () => t);
    expect([rl.take('a'), rl.take('a'), rl.take('a')]).toEqual([true, true, false]);
    expect([rl.take('b'), rl.take('c')]).toEqual([true, false]);
    t = 1500;
    expect(rl.take('a')).toBe(true);
  });

  it('an Origin must be this host, or the public address', () => {
    const req = (origin?: string) => ({ headers: { host: 'lab.local:7358', ...(origin ? { origin } : {}) } }) as never;
    expect(originAllowed(req('http://lab.local:7358'), undefined, true)).toBe(true);
    expect(originAllowed(req('http://evil.example'), undefined, true)).toBe(false);
    expect(originAllowed(req('null'), undefined, false)).toBe(false);
    expect(originAllowed(req(), undefined, true)).toBe(false);
    expect(originAllowed(req(), undefined, false)).toBe(true);
    expect(originAllowed(req('https://lab.example.edu'), 'https://lab.example.edu', true)).toBe(true);
  });
});
