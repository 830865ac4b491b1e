// The live page's web server: node:http, the page's static files, the state diagram, and one Server-Sent Events
// stream of views. Read-only: nothing a browser sends changes anything (GET and HEAD only). Bound to loopback
// unless told otherwise, and then it refuses requests addressed by another name (a DNS-rebinding page cannot
// read it). Everything it serves ships in the package: no CDN, so it works in an offline classroom.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { extname, join } from 'node:path';
import createDebug from 'debug';
import { LabError } from '../errors.js';
import { stateMachineSvg } from './state-machine.js';
import { ownFile } from '../paths.js';

const log = createDebug('lab:ui');

/** At most this many pages open at once (each holds one event stream). */
const MAX_CLIENTS = 32;
const HEARTBEAT_MS = 15_000;
/** How long /latest.json waits for the first view before it answers with what there is. */
const FIRST_VIEW_WAIT_MS = 10_000;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

const SECURITY_HEADERS = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
};

/**
 * Where the page's files are. In a clone, src/ui/static (edits show at once, and tsc alone does not copy
 * them); in an installed package, dist/ui/static, which the build copies there (scripts/copy-ui-static.mjs).
 */
export function staticDir(candidates = [ownFile('src', 'ui', 'static'), ownFile('dist', 'ui', 'static')]): string {
  for (const dir of candidates) {
    if (existsSync(join(dir, 'index.html'))) return dir;
  }
  throw new LabError(
    "the live page's files are missing from this installation (ui/static)",
    'reinstall tcplab; in a clone, `git status` should show src/ui/static',
    70,
  );
}

/** Load every file of the page once: a fixed set, so no request path ever reaches the file system. */
function loadStatic(dir: string): Map<string, { type: string; body: Buffer }> {
  const files = new Map<string, { type: string; body: Buffer }>();
  for (const name of readdirSync(dir)) {
    const type = TYPES[extname(name)];
    if (type) files.set(`/${name}`, { type, body: readFileSync(join(dir, name)) });
  }
  files.set('/diagram.svg', { type: TYPES['.svg']!, body: Buffer.from(stateMachineSvg()) });
  return files;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/** Names a browser may use for a loopback-bound server (the Host header, without the port). */
function allowedHost(header: string | undefined, boundHost: string): boolean {
  if (!isLoopback(boundHost)) return true;
  if (!header) return false;
  const name = header
    .replace(/:\d+$/, '')
    .replace(/^\[(.*)\]$/, '$1')
    .toLowerCase();
  return name === 'localhost' || name === '::1' || /^127\.\d+\.\d+\.\d+$/.test(name);
}

interface UiServerOptions {
  host: string;
  /** 0: any free port. */
  port: number;
  dir?: string;
}

export interface UiServer {
  url: string;
  port: number;
  /** Send an event to every open page, unless it is the same as the last one of its kind; a page that connects
   *  later gets the latest of each kind first. */
  publish(event: 'view' | 'ladder' | 'end', data: unknown): void;
  /** Pages connected now. */
  readonly clients: number;
  close(): Promise<void>;
}

/** Where a browser reaches a server bound to host:port. */
export function urlFor(host: string, port: number): string {
  const shown = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${isIP(shown) === 6 ? `[${shown}]` : shown}:${port}/`;
}

export async function startUiServer(opts: UiServerOptions): Promise<UiServer> {
  const files = loadStatic(opts.dir ?? staticDir());
  const clients = new Set<ServerResponse>();
  const latest = new Map<string, string>();
  /** /latest.json requests that came before the first view, and their time-outs. */
  const waiting = new Map<() => void, NodeJS.Timeout>();
  const server = createServer((req, res) => handle(req, res));

  function handle(req: IncomingMessage, res: ServerResponse): void {
    if (!allowedHost(req.headers.host, opts.host)) {
      res.writeHead(421, { 'Content-Type': 'text/plain' }).end('this page answers to localhost only\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' }).end('read-only\n');
      return;
    }
    const path = (req.url ?? '/').split('?')[0]!;
    if (path === '/events') return openStream(req, res);
    if (path === '/latest.json') {
      // The latest of each event, as one document: for a script, or a look without a browser. Until the first
      // view (the first look at every machine takes a moment), the request waits for it rather than answer {}.
      const answer = () => {
        const body = `{${[...latest].map(([event, json]) => `${JSON.stringify(event)}:${json}`).join(',')}}`;
        res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': 'application/json; charset=utf-8' });
        res.end(req.method === 'HEAD' ? undefined : body);
      };
      if (latest.has('view') || latest.has('end')) return answer();
      const timer = setTimeout(() => {
        waiting.delete(answer);
        answer();
      }, FIRST_VIEW_WAIT_MS);
      waiting.set(answer, timer);
      req.on('close', () => {
        clearTimeout(timer);
        waiting.delete(answer);
      });
      return;
    }
    const file = files.get(path === '/' ? '/index.html' : path);
    if (!file) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
      return;
    }
    res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': file.type, 'Content-Length': file.body.length });
    res.end(req.method === 'HEAD' ? undefined : file.body);
  }

  function openStream(req: IncomingMessage, res: ServerResponse): void {
    if (clients.size >= MAX_CLIENTS) {
      res.writeHead(503, { 'Content-Type': 'text/plain', 'Retry-After': '5' }).end('too many pages open\n');
      return;
    }
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'Content-Type': 'text/event-stream; charset=utf-8',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    res.write('retry: 2000\n\n');
    for (const [event, data] of latest) res.write(frame(event, data));
    clients.add(res);
    log('page connected (%d open)', clients.size);
    req.on('close', () => {
      clients.delete(res);
      log('page left (%d open)', clients.size);
    });
  }

  const heartbeat = setInterval(() => {
    for (const c of clients) c.write(': ping\n\n');
  }, HEARTBEAT_MS);
  heartbeat.unref();

  await new Promise<void>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      reject(listenError(e, opts));
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(opts.port, opts.host);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : opts.port;
  server.on('error', (e) => log('server error: %s', e.message));

  return {
    url: urlFor(opts.host, port),
    port,
    publish(event, data) {
      const json = JSON.stringify(data);
      if (latest.get(event) === json) return;
      latest.set(event, json);
      for (const c of clients) c.write(frame(event, json));
      if (event === 'view' || event === 'end')
        for (const [answer, timer] of waiting) {
          clearTimeout(timer);
          waiting.delete(answer);
          answer();
        }
    },
    get clients() {
      return clients.size;
    },
    async close() {
      clearInterval(heartbeat);
      for (const [answer, timer] of waiting) {
        clearTimeout(timer);
        answer();
      }
      waiting.clear();
      for (const c of clients) c.end();
      clients.clear();
      await closeServer(server);
    },
  };
}

function frame(event: string, json: string): string {
  return `event: ${event}\ndata: ${json}\n\n`;
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

function listenError(e: NodeJS.ErrnoException, opts: UiServerOptions): Error {
  if (e.code === 'EADDRINUSE')
    return new LabError(
      `port ${opts.port} on ${opts.host} is in use`,
      'choose another with --port N, or leave --port out and lab ui picks a free one',
    );
  if (e.code === 'EACCES')
    return new LabError(`not allowed to listen on port ${opts.port}`, 'ports below 1024 need root: choose one above 1024 with --port');
  if (e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN')
    return new LabError(`${opts.host} is not an address of this machine`, 'leave --host out (127.0.0.1), or give one of its own addresses');
  return e;
}
