// The class server's web side: node:http (or https with --tls-cert/--tls-key), the pages and their modules
// (no build step, nothing from a CDN: xterm.js comes from this package's node_modules), JSON calls, event
// streams (SSE) and terminals (WebSocket, `ws`). Every request is authenticated here before anything else
// runs: a student by their session cookie (from their personal link, or the join code and a name), the
// instructor by theirs (from the secret link). A student's calls never name a student or an instance: the
// server takes both from the session, so no URL or message reaches anyone else's lab. Changes are POSTs with
// the session's CSRF token and, from a browser, this server's Origin; WebSockets must come from this Origin.
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';
import { extname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import createDebug from 'debug';
import { WebSocketServer, type WebSocket } from 'ws';
import { LabError } from '../errors.js';
import { STUDENT_ID } from '../identity.js';
import { isLoopback, staticDir as uiStaticDir, urlFor } from '../ui/server.js';
import { stateMachineSvg } from '../ui/state-machine.js';
import { renderGradebook } from '../report/csv.js';
import { renderSubmissionsJunit } from '../report/junit.js';
import { clientAddress, cookieName, originAllowed, RateLimit, readCookie, SECRET_SHAPE, sameSecret, setCookie } from './auth.js';
import type { Classroom, Event } from './classroom.js';
import type { SessionRecord, Store } from './store.js';
import type { TerminalPeer } from './terminal.js';
import { WalkRefused, type WalkIntent } from '../walk/session.js';
import { ownFile } from '../paths.js';

const log = createDebug('lab:serve');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** lab ui's policy, with one difference: xterm.js writes its own <style> elements, so pages carry a nonce
 *  that our scripts give those (style-src only; scripts stay 'self' alone). */
function csp(nonce?: string): string {
  return `default-src 'none'; script-src 'self'; style-src 'self'${nonce ? ` 'nonce-${nonce}'` : ''}; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;
}

const HEADERS = {
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

const MAX_BODY = 16 * 1024;
const HEARTBEAT_MS = 15_000;
/** A page that reads its terminal slower than this much output behind is dropped (it reattaches, replayed). */
const MAX_BUFFERED = 1024 * 1024;
/** Event streams per student and in all (each is a socket held open). */
const MAX_STREAMS_PER_SESSION = 8;
const MAX_STREAMS = 2000;

function serveStaticDir(candidates = [ownFile('src', 'serve', 'static'), ownFile('dist', 'serve', 'static')]): string {
  for (const dir of candidates) {
    if (existsSync(join(dir, 'student.html'))) return dir;
  }
  throw new LabError("the class server's files are missing from this installation (serve/static)", 'reinstall tcplab', 70);
}

interface File {
  type: string;
  body: Buffer;
  html?: string;
}

/** Every file any page may load, read once: a fixed set, so no request path reaches the file system. */
function loadFiles(): Map<string, File> {
  const files = new Map<string, File>();
  const add = (path: string, file: string) => {
    const type = TYPES[extname(file)];
    if (!type) return;
    const body = readFileSync(file);
    files.set(path, { type, body, ...(type.startsWith('text/html') ? { html: body.toString('utf8') } : {}) });
  };
  const own = serveStaticDir();
  for (const name of readdirSync(own)) add(`/${name}`, join(own, name));
  // lab ui's modules draw the live view beside the terminal: the same files, not a copy.
  const ui = uiStaticDir();
  for (const name of readdirSync(ui)) if (name.endsWith('.js') || name.endsWith('.css')) add(`/ui/${name}`, join(ui, name));
  files.set('/ui/diagram.svg', { type: TYPES['.svg']!, body: Buffer.from(stateMachineSvg()) });
  const require = createRequire(import.meta.url);
  add('/vendor/xterm.mjs', require.resolve('@xterm/xterm/lib/xterm.mjs'));
  add('/vendor/xterm.css', require.resolve('@xterm/xterm/css/xterm.css'));
  add('/vendor/addon-fit.mjs', require.resolve('@xterm/addon-fit/lib/addon-fit.mjs'));
  return files;
}

interface ServeOptions {
  host: string;
  port: number;
  tls?: { cert: Buffer; key: Buffer };
  classroom: Classroom;
  store: Store;
  joinCode?: string;
  publicUrl?: string;
  /** Trust X-Forwarded-For for rate limits (behind a reverse proxy that sets it). */
  trustProxy?: boolean;
}

export interface ClassServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export async function startClassServer(o: ServeOptions): Promise<ClassServer> {
  const files = loadFiles();
  const tls = !!o.tls;
  const studentCookie = cookieName(tls, 'student');
  const teacherCookie = cookieName(tls, 'teacher');
  // Wrong codes and unknown links: 10 a minute per address, 60 in all; a guesser gets nowhere, while a class
  // behind one address (a school's NAT) joins at once (right answers are not counted).
  const joins = new RateLimit(10, 60, 60_000);
  const links = new RateLimit(10, 60, 60_000);
  const streams = new Map<string, number>();
  let streamCount = 0;
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024, perMessageDeflate: false });
  const sockets = new Set<WebSocket>();
  const sse = new Set<ServerResponse>();
  const { classroom, store } = o;

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((e: unknown) => {
      const status =
        e instanceof HttpError ? e.status : e instanceof LabError && e.exitCode >= 400 ? e.exitCode : e instanceof LabError ? 400 : 500;
      if (status === 500) log('request %s %s failed: %s', req.method, req.url, (e as Error).stack);
      if (res.headersSent) {
        res.end();
        return;
      }
      const message = status === 500 ? 'internal error' : (e as Error).message;
      const hint = e instanceof LabError && e.hint ? { hint: e.hint } : {};
      json(res, status, { error: message, ...hint });
    });
  };
  const server: Server = o.tls ? createHttpsServer({ cert: o.tls.cert, key: o.tls.key }, handler) : createHttpServer(handler);
  server.headersTimeout = 20_000;
  server.requestTimeout = 30_000;

  function hostAllowed(req: IncomingMessage): boolean {
    if (!isLoopback(o.host)) return true;
    const name = (req.headers.host ?? '')
      .replace(/:\d+$/, '')
      .replace(/^\[(.*)\]$/, '$1')
      .toLowerCase();
    if (o.publicUrl && new URL(o.publicUrl).hostname.toLowerCase() === name) return true;
    return name === 'localhost' || name === '::1' || /^127\.\d+\.\d+\.\d+$/.test(name);
  }

  function json(res: ServerResponse, status: number, body: unknown, extra: Record<string, string | string[]> = {}): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { ...HEADERS, 'Content-Security-Policy': csp(), 'Content-Type': 'application/json; charset=utf-8', ...extra });
    res.end(text);
  }

  function redirect(res: ServerResponse, to: string, cookie?: string): void {
    res.writeHead(303, { ...HEADERS, Location: to, ...(cookie ? { 'Set-Cookie': cookie } : {}) });
    res.end();
  }

  function page(res: ServerResponse, name: string, status = 200): void {
    const f = files.get(name)!;
    const nonce = randomBytes(16).toString('base64');
    const body = f.html!.replaceAll('{{nonce}}', nonce);
    res.writeHead(status, { ...HEADERS, 'Content-Security-Policy': csp(nonce), 'Content-Type': f.type });
    res.end(body);
  }

  function sessionOf(req: IncomingMessage, role: 'student' | 'teacher'): SessionRecord | undefined {
    const cookie = readCookie(req, role === 'student' ? studentCookie : teacherCookie);
    if (!cookie || !SECRET_SHAPE.test(cookie)) return undefined;
    const s = store.session(cookie);
    if (!s || s.role !== role) return undefined;
    if (role === 'student' && (!s.student || !classroom.has(s.student))) return undefined;
    return s;
  }

  function need(req: IncomingMessage, role: 'student' | 'teacher'): SessionRecord {
    const s = sessionOf(req, role);
    if (!s)
      throw new HttpError(
        401,
        role === 'student'
          ? 'not signed in: open your personal link, or join with the class code'
          : "the instructor's link is needed for this",
      );
    return s;
  }

  /** A change: the session's CSRF token, and a browser's Origin must be ours. */
  function guardChange(req: IncomingMessage, s: SessionRecord): void {
    const token = req.headers['x-csrf-token'];
    if (typeof token !== 'string' || !sameSecret(token, s.csrf)) throw new HttpError(403, 'missing or wrong CSRF token: reload the page');
    if (!originAllowed(req, o.publicUrl, false)) throw new HttpError(403, 'this request came from another site');
  }

  async function body(req: IncomingMessage): Promise<Record<string, unknown>> {
    const type = req.headers['content-type'] ?? '';
    if (!/^application\/json\b/.test(type)) throw new HttpError(415, 'send JSON (Content-Type: application/json)');
    let size = 0;
    const chunks: Buffer[] = [];
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size > MAX_BODY) throw new HttpError(413, 'too large');
      chunks.push(c as Buffer);
    }
    try {
      const v = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as unknown;
      if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
      return v as Record<string, unknown>;
    } catch {
      throw new HttpError(400, 'not JSON');
    }
  }

  function stream(req: IncomingMessage, res: ServerResponse, key: string, open: (send: (e: Event) => void) => () => void): void {
    const mine = streams.get(key) ?? 0;
    if (mine >= MAX_STREAMS_PER_SESSION || streamCount >= MAX_STREAMS) throw new HttpError(503, 'too many pages open: close some tabs');
    streams.set(key, mine + 1);
    streamCount++;
    res.writeHead(200, {
      ...HEADERS,
      'Content-Security-Policy': csp(),
      'Content-Type': 'text/event-stream; charset=utf-8',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    res.write('retry: 2000\n\n');
    sse.add(res);
    const close = open((e) => res.write(`event: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`));
    req.on('close', () => {
      close();
      sse.delete(res);
      streams.set(key, (streams.get(key) ?? 1) - 1);
      streamCount--;
    });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!hostAllowed(req)) {
      res.writeHead(421, { 'Content-Type': 'text/plain' }).end('this server answers to its own name only\n');
      return;
    }
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const get = method === 'GET' || method === 'HEAD';

    // Static files: the same for everyone (they hold no data).
    const f = get && !path.endsWith('.html') ? files.get(path) : undefined;
    if (f) {
      res.writeHead(200, {
        ...HEADERS,
        'Cache-Control': 'no-cache',
        'Content-Security-Policy': csp(),
        'Content-Type': f.type,
        'Content-Length': f.body.length,
      });
      res.end(method === 'HEAD' ? undefined : f.body);
      return;
    }

    // ---- signing in ----
    let m = /^\/j\/([^/]+)$/.exec(path);
    if (m && get) {
      const secret = m[1]!;
      const ip = clientAddress(req, !!o.trustProxy);
      if (links.blocked(ip)) throw new HttpError(429, 'too many tries: wait a minute');
      const student = SECRET_SHAPE.test(secret) ? store.studentOfLink(secret) : undefined;
      if (!student || !classroom.has(student)) {
        links.take(ip);
        return page(res, '/expired.html', 404);
      }
      const { cookie } = store.newSession({ role: 'student', student });
      classroom.joined(student);
      return redirect(res, '/', setCookie(studentCookie, cookie, { tls }));
    }
    m = /^\/t\/([^/]+)$/.exec(path);
    if (m && get) {
      const ip = clientAddress(req, !!o.trustProxy);
      if (links.blocked(ip)) throw new HttpError(429, 'too many tries: wait a minute');
      if (!SECRET_SHAPE.test(m[1]!) || !sameSecret(m[1]!, store.teacherSecret)) {
        links.take(ip);
        return page(res, '/expired.html', 404);
      }
      const { cookie } = store.newSession({ role: 'teacher' });
      return redirect(res, '/dashboard', setCookie(teacherCookie, cookie, { tls }));
    }
    if (path === '/api/join' && method === 'POST') {
      if (!o.joinCode) throw new HttpError(404, 'this class has no join code: use your personal link');
      if (!originAllowed(req, o.publicUrl, false)) throw new HttpError(403, 'this request came from another site');
      const ip = clientAddress(req, !!o.trustProxy);
      if (joins.blocked(ip)) {
        json(res, 429, { error: 'too many wrong codes: wait a minute' }, { 'Retry-After': String(joins.retryAfterS(ip)) });
        return;
      }
      const b = await body(req);
      const code = typeof b.code === 'string' ? b.code.trim().toUpperCase() : '';
      const name = typeof b.name === 'string' ? b.name : '';
      if (!sameSecret(code, o.joinCode)) {
        joins.take(ip);
        throw new HttpError(403, 'that is not the class code');
      }
      const rec = classroom.joinWithName(name);
      const { cookie } = store.newSession({ role: 'student', student: rec.id });
      json(res, 200, { ok: true, student: { id: rec.id, name: rec.name } }, { 'Set-Cookie': setCookie(studentCookie, cookie, { tls }) });
      return;
    }

    // ---- pages ----
    if (get && path === '/') {
      if (sessionOf(req, 'student')) return page(res, '/student.html');
      return page(res, '/join.html');
    }
    if (get && path === '/dashboard') {
      if (!sessionOf(req, 'teacher')) return page(res, '/expired.html', 401);
      return page(res, '/dashboard.html');
    }
    m = /^\/watch\/([^/]+)$/.exec(path);
    if (get && m) {
      if (!sessionOf(req, 'teacher')) return page(res, '/expired.html', 401);
      return page(res, '/student.html');
    }

    // ---- a student's own calls ----
    if (path.startsWith('/api/me')) {
      const s = need(req, 'student');
      const id = s.student!;
      if (get && path === '/api/me') return json(res, 200, { csrf: s.csrf, state: classroom.state(id) });
      if (get && path === '/api/me/events') return stream(req, res, `s:${id}`, (send) => classroom.subscribe(id, send));
      if (get && path === '/api/me/live') return stream(req, res, `s:${id}`, (send) => classroom.watchLive(id, send));
      if (method !== 'POST') throw new HttpError(405, 'not here');
      guardChange(req, s);
      const b = await body(req);
      if (path === '/api/me/start') {
        if (typeof b.slug !== 'string') throw new HttpError(400, 'which lab? {"slug": ...}');
        classroom.start(id, b.slug);
        return json(res, 202, { ok: true });
      }
      if (path === '/api/me/stop') {
        await classroom.stop(id, 'student');
        return json(res, 200, { ok: true });
      }
      if (path === '/api/me/walk') {
        const intent = walkIntent(b);
        if (!classroom.running(id)) throw new HttpError(409, 'no lab of yours is running: press Start first');
        // The page hears what happened on its event stream; this answers once the intent is taken.
        // A quit is a stop (the lab goes, the page is told), whatever the walk is doing.
        if (intent.type === 'quit') {
          await classroom.stop(id, 'student');
          return json(res, 200, { ok: true });
        }
        // The walk takes it at once or refuses it at once (it does not fit, or the walk is busy); the work it starts
        // may take a while, and the page hears of it on its event stream.
        const work = classroom.intent(id, intent);
        const refused = await Promise.race([
          work.then(
            () => undefined,
            (e: unknown) => e,
          ),
          new Promise((r) => setTimeout(r, 50, undefined)),
        ]);
        if (refused instanceof WalkRefused) throw new HttpError(409, refused.message);
        if (refused instanceof LabError) throw refused;
        work.catch((e: unknown) => log('%s: intent: %s', id, (e as Error).message));
        return json(res, 202, { ok: true });
      }
      if (path === '/api/me/touch') {
        classroom.touch(id);
        return json(res, 200, { ok: true });
      }
      if (path === '/api/me/dismiss') {
        classroom.dismissNotice(id);
        return json(res, 200, { ok: true });
      }
      throw new HttpError(404, 'no such call');
    }

    // ---- the instructor's ----
    if (path.startsWith('/api/class')) {
      const s = need(req, 'teacher');
      if (get && path === '/api/class')
        return json(res, 200, {
          csrf: s.csrf,
          title: classroom.config.title,
          joinCode: o.joinCode ?? null,
          limits: classroom.config.limits,
          labs: classroom.offered(),
          rows: classroom.rows(),
        });
      if (get && path === '/api/class/events') return stream(req, res, 'teacher', (send) => classroom.subscribeTeacher(send));
      m = /^\/api\/class\/students\/([^/]+)\/(state|events|live|stop)$/.exec(path);
      if (m) {
        const id = decodeURIComponent(m[1]!);
        if (!STUDENT_ID.test(id) || !classroom.has(id)) throw new HttpError(404, 'no such student');
        if (get && m[2] === 'state') return json(res, 200, { csrf: s.csrf, state: classroom.state(id), watching: true });
        if (get && m[2] === 'events') return stream(req, res, 'teacher', (send) => classroom.subscribe(id, send, true));
        if (get && m[2] === 'live') return stream(req, res, 'teacher', (send) => classroom.watchLive(id, send));
        if (method === 'POST' && m[2] === 'stop') {
          guardChange(req, s);
          await classroom.stop(id, 'teacher');
          return json(res, 200, { ok: true });
        }
      }
      if (method === 'POST' && path === '/api/class/stop-all') {
        guardChange(req, s);
        return json(res, 200, { stopped: await classroom.stopAll() });
      }
      m = /^\/api\/class\/gradebook\/([a-z][a-z0-9-]*)(\.csv|\.xml|\/export|\/replay)$/.exec(path);
      if (m) {
        const slug = m[1]!;
        const replayed = url.searchParams.get('from') === 'replay';
        if (get && (m[2] === '.csv' || m[2] === '.xml')) {
          const got = replayed ? classroom.replayResults(slug) : classroom.liveResults(slug);
          if (!got) throw new HttpError(404, 'no replay of this lab has finished yet');
          const csv = m[2] === '.csv';
          res.writeHead(200, {
            ...HEADERS,
            'Content-Security-Policy': csp(),
            'Content-Type': csv ? 'text/csv; charset=utf-8' : 'application/xml; charset=utf-8',
            'Content-Disposition': `attachment; filename="${slug}-${replayed ? 'replayed' : 'live'}${m[2]}"`,
          });
          res.end(csv ? renderGradebook(got.lab, got.results) : renderSubmissionsJunit(got.lab, got.results));
          return;
        }
        if (get && m[2] === '/replay') return json(res, 200, classroom.replayState(slug));
        if (method === 'POST') {
          guardChange(req, s);
          if (m[2] === '/export') return json(res, 200, { dir: classroom.exportLive(slug).dir });
          if (m[2] === '/replay') {
            classroom.replay(slug);
            return json(res, 202, classroom.replayState(slug));
          }
        }
      }
      throw new HttpError(404, 'no such call');
    }
    if (!get) throw new HttpError(405, 'not here');
    page(res, '/notfound.html', 404);
  }

  /** The walk's intents (src/walk/session.ts), as the page sends them; nothing else reaches the walk. */
  function walkIntent(b: Record<string, unknown>): WalkIntent {
    switch (b.type) {
      case 'answer':
        if (typeof b.key !== 'string' || !/^[a-z]$/.test(b.key)) throw new HttpError(400, 'answer needs a choice letter');
        return { type: 'answer', key: b.key };
      case 'show':
        if (b.view !== 'rules' && b.view !== 'processes' && b.view !== 'sockets' && b.view !== 'ladder')
          throw new HttpError(400, 'show takes rules, processes, sockets or ladder');
        return { type: 'show', view: b.view };
      case 'next':
      case 'check':
      case 'hint':
      case 'solve':
      case 'observe':
      case 'quit':
        return { type: b.type };
      default:
        throw new HttpError(400, 'an intent is answer, next, check, hint, solve, observe, show or quit');
    }
  }

  // ---- terminals ----
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const refuse = (status: number, text: string) => {
      socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    try {
      if (!hostAllowed(req)) return refuse(421, 'Misdirected Request');
      // A page of another site cannot open a socket here with the student's cookie.
      if (!originAllowed(req, o.publicUrl, true)) return refuse(403, 'Forbidden');
      const url = new URL(req.url ?? '/', 'http://x');
      const node = url.searchParams.get('node') ?? '';
      let student: string | undefined;
      let readOnly = true;
      if (url.pathname === '/ws/term') {
        student = sessionOf(req, 'student')?.student;
        readOnly = false;
      } else if (url.pathname === '/ws/watch') {
        const id = url.searchParams.get('student') ?? '';
        if (sessionOf(req, 'teacher') && STUDENT_ID.test(id) && classroom.has(id)) student = id;
      }
      if (!student) return refuse(401, 'Unauthorized');
      const terminal = classroom.terminal(student, node);
      if (!terminal) return refuse(404, 'Not Found');
      const who = student;
      wss.handleUpgrade(req, socket, head, (ws) => {
        sockets.add(ws);
        let alive = true;
        const peer: TerminalPeer = {
          readOnly,
          output(data) {
            if (ws.readyState !== ws.OPEN) return;
            if (ws.bufferedAmount > MAX_BUFFERED) {
              ws.close(4000, 'too far behind; reconnect');
              return;
            }
            ws.send(data, { binary: true });
          },
          control(msg) {
            if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(msg));
            if (msg.type === 'gone') ws.close(4001, 'gone');
          },
        };
        const size = { cols: Number(url.searchParams.get('cols')), rows: Number(url.searchParams.get('rows')) };
        void terminal.attach(peer, size.cols && size.rows ? size : undefined);
        ws.on('message', (data, isBinary) => {
          if (readOnly) return;
          const text = isBinary ? Buffer.from(data as Buffer).toString('utf8') : (data as Buffer).toString('utf8');
          const kind = text[0];
          if (kind === '0') {
            classroom.touch(who);
            terminal.input(peer, text.slice(1));
          } else if (kind === '1') {
            try {
              const r = JSON.parse(text.slice(1)) as { cols?: unknown; rows?: unknown };
              if (typeof r.cols === 'number' && typeof r.rows === 'number') terminal.resize(peer, r.cols, r.rows);
            } catch {
              // A resize that is not JSON: ignored.
            }
          }
        });
        ws.on('pong', () => (alive = true));
        const ping = setInterval(() => {
          if (!alive) return ws.terminate();
          alive = false;
          ws.ping();
        }, HEARTBEAT_MS);
        ws.on('close', () => {
          clearInterval(ping);
          sockets.delete(ws);
          terminal.detach(peer);
        });
      });
    } catch (e) {
      log('upgrade failed: %s', (e as Error).message);
      refuse(500, 'Internal Server Error');
    }
  });

  const heartbeat = setInterval(() => {
    for (const r of sse) r.write(': ping\n\n');
  }, HEARTBEAT_MS);
  heartbeat.unref();

  await new Promise<void>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) => reject(listenError(e, o));
    server.once('error', onError);
    server.listen(o.port, o.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (e) => log('server error: %s', e.message));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : o.port;
  const local = urlFor(o.host, port).replace(/^http:/, tls ? 'https:' : 'http:');

  return {
    url: o.publicUrl ? `${o.publicUrl}/` : local,
    port,
    async close() {
      clearInterval(heartbeat);
      for (const ws of sockets) ws.terminate();
      for (const r of sse) r.end();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

function listenError(e: NodeJS.ErrnoException, o: ServeOptions): Error {
  if (e.code === 'EADDRINUSE') return new LabError(`port ${o.port} on ${o.host} is in use`, 'choose another with --port N');
  if (e.code === 'EACCES')
    return new LabError(
      `not allowed to listen on port ${o.port}`,
      'ports below 1024 need root: use a reverse proxy (docs/classroom.md), or a port above 1024',
    );
  if (e.code === 'EADDRNOTAVAIL')
    return new LabError(`${o.host} is not an address of this machine`, 'leave --host out, or give one of its own addresses');
  return e;
}
