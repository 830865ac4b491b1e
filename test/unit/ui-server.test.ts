// The live page's server and files, without Docker: what it serves, to whom, the event stream, a busy port, and
// that the page's files are all there and copied by the build (that the package ships the copy: test/install).
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { request, type IncomingMessage } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { isLoopback, staticDir, startUiServer, urlFor, type UiServer } from '../../src/ui/server.js';

const run = promisify(execFile);

interface Reply {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

function get(url: string, opts: { method?: string; host?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? 'GET', ...(opts.host ? { headers: { Host: opts.host } } : {}) }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Read an event stream until `want` events have arrived; each is { event, data }. */
function events(url: string, want: number): Promise<{ event: string; data: unknown }[]> {
  return new Promise((resolve, reject) => {
    const got: { event: string; data: unknown }[] = [];
    const req = request(`${url}events`, (res) => {
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        buf += c;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const frame = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const ev = /^event: (.*)$/m.exec(frame)?.[1];
          const data = /^data: (.*)$/m.exec(frame)?.[1];
          if (ev && data) got.push({ event: ev, data: JSON.parse(data) });
          if (got.length >= want) {
            req.destroy();
            resolve(got);
          }
        }
      });
    });
    req.on('error', (e) => (got.length >= want ? undefined : reject(e)));
    req.end();
  });
}

let server: UiServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe('the live page server', () => {
  it('serves the page, its modules and the state diagram, with a policy that allows nothing from elsewhere', async () => {
    server = await startUiServer({ host: '127.0.0.1', port: 0 });
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/`);
    const page = await get(server.url);
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toMatch(/default-src 'none'; script-src 'self'/);
    expect(page.body).toContain('<script type="module" src="/app.js">');
    const app = await get(`${server.url}app.js`);
    expect(app.headers['content-type']).toBe('text/javascript; charset=utf-8');
    const svg = await get(`${server.url}diagram.svg`);
    expect(svg.headers['content-type']).toBe('image/svg+xml');
    expect(svg.body).toContain('data-state="ESTABLISHED"');
    expect((await get(`${server.url}nope.js`)).status).toBe(404);
    expect((await get(`${server.url}../package.json`)).status).toBe(404);
    expect((await get(`${server.url}%2e%2e/%2e%2e/package.json`)).status).toBe(404);
  });

  it('is read-only, and answers only to local names while bound to loopback', async () => {
    server = await startUiServer({ host: '127.0.0.1', port: 0 });
    expect((await get(server.url, { method: 'POST' })).status).toBe(405);
    expect((await get(server.url, { method: 'DELETE' })).status).toBe(405);
    // A page on evil.example that resolves its name to 127.0.0.1 (DNS rebinding) must not read the lab.
    expect((await get(server.url, { host: `evil.example:${server.port}` })).status).toBe(421);
    expect((await get(server.url, { host: `localhost:${server.port}` })).status).toBe(200);
    server.publish('view', { n: 1 });
    expect((await get(`${server.url}latest.json`, { host: `[::1]:${server.port}` })).status).toBe(200);
  });

  it('streams the latest view to a page that connects, then every view published', async () => {
    server = await startUiServer({ host: '127.0.0.1', port: 0 });
    server.publish('view', { n: 1 });
    server.publish('view', { n: 2 });
    server.publish('ladder', { rows: [] });
    const stream = events(server.url, 4);
    // Wait for the page to be connected before publishing more.
    for (let i = 0; i < 200 && server.clients === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(server.clients).toBe(1);
    // The same ladder again is not sent again.
    server.publish('ladder', { rows: [] });
    server.publish('view', { n: 3 });
    server.publish('end', { reason: 'gone' });
    expect(await stream).toEqual([
      { event: 'view', data: { n: 2 } },
      { event: 'ladder', data: { rows: [] } },
      { event: 'view', data: { n: 3 } },
      { event: 'end', data: { reason: 'gone' } },
    ]);
    expect(JSON.parse((await get(`${server.url}latest.json`)).body)).toEqual({
      view: { n: 3 },
      ladder: { rows: [] },
      end: { reason: 'gone' },
    });
  });

  it('answers /latest.json with the first view, never with {} while the first look is under way', async () => {
    server = await startUiServer({ host: '127.0.0.1', port: 0 });
    let answered = false;
    const early = get(`${server.url}latest.json`).then((r) => {
      answered = true;
      return r;
    });
    // The request is in: give the server time to answer if it were going to answer at once.
    for (const deadline = Date.now() + 300; Date.now() < deadline && !answered;) await new Promise((r) => setTimeout(r, 10));
    expect(answered).toBe(false);
    server.publish('ladder', { rows: [] });
    server.publish('view', { n: 1 });
    const r = await early;
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toEqual({ ladder: { rows: [] }, view: { n: 1 } });
  });

  it('refuses a port in use with a clear error, and says so for an address this machine does not have', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    try {
      await expect(startUiServer({ host: '127.0.0.1', port })).rejects.toMatchObject({
        message: `port ${port} on 127.0.0.1 is in use`,
        hint: expect.stringMatching(/--port/),
        exitCode: 2,
      });
    } finally {
      blocker.close();
    }
    await expect(startUiServer({ host: '192.0.2.1', port: 0 })).rejects.toMatchObject({
      message: '192.0.2.1 is not an address of this machine',
    });
  });

  it('closes open event streams when it stops', async () => {
    server = await startUiServer({ host: '127.0.0.1', port: 0 });
    const ended = new Promise<void>((resolve) => request(`${server!.url}events`, (res) => res.on('end', () => resolve()).resume()).end());
    for (let i = 0; i < 200 && server.clients === 0; i++) await new Promise((r) => setTimeout(r, 10));
    await server.close();
    server = undefined;
    await ended;
  });

  it('says where a browser reaches it', () => {
    expect(urlFor('127.0.0.1', 8000)).toBe('http://127.0.0.1:8000/');
    expect(urlFor('0.0.0.0', 8000)).toBe('http://127.0.0.1:8000/');
    expect(urlFor('::1', 8000)).toBe('http://[::1]:8000/');
    expect(isLoopback('127.0.0.1') && isLoopback('::1') && !isLoopback('0.0.0.0') && !isLoopback('198.51.100.7')).toBe(true);
  });
});

describe("the page's files", () => {
  const dir = staticDir();
  const files = readdirSync(dir);

  it('are all there: everything the page and its modules load, and nothing from the network', () => {
    const html = readFileSync(join(dir, 'index.html'), 'utf8');
    const refs = [...html.matchAll(/(?:src|href)="\/([^"]+)"/g)].map((m) => m[1]!);
    expect(refs).toEqual(expect.arrayContaining(['style.css', 'app.js']));
    for (const name of files.filter((f) => f.endsWith('.js'))) {
      const js = readFileSync(join(dir, name), 'utf8');
      refs.push(...[...js.matchAll(/from '\.\/([^']+)'/g)].map((m) => m[1]!));
    }
    for (const r of refs) expect(files, `${r} is referenced`).toContain(r);
    // The only absolute URL allowed is SVG's namespace name, which is never fetched.
    for (const name of files) {
      const urls = readFileSync(join(dir, name), 'utf8').match(/(?:https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}[^\s'"`)]*/gi) ?? [];
      expect(
        urls.filter((u) => u !== 'http://www.w3.org/2000/svg'),
        name,
      ).toEqual([]);
    }
  });

  it('type-check against the DOM (their JSDoc types, strict)', async () => {
    const r = await run('node', ['node_modules/typescript/bin/tsc', '-p', 'src/ui/tsconfig.static.json']).catch(
      (e: { stdout: string }) => e,
    );
    expect(r.stdout).toBe('');
  });

  it('are copied into dist/ by the build, which is what an installed package has', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'tcplab-ui-'));
    onTestFinished(() => rmSync(tmp, { recursive: true, force: true }));
    const dest = join(tmp, 'static');
    await run('node', ['scripts/copy-ui-static.mjs', dest]);
    expect(readdirSync(dest).sort()).toEqual(files.filter((f) => /\.(html|js|css|svg|png|ico)$/.test(f)).sort());
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.build).toContain('node scripts/copy-ui-static.mjs');
    // Served from the copy as from the source.
    expect(staticDir([dest])).toBe(dest);
  });
});
