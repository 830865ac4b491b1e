// A simulated student of `lab serve`, as a browser would be one: a session cookie, the CSRF token, the page's
// event stream and WebSocket terminals (the `ws` client, with this server's Origin). The benchmark runs many of
// them at once; the tests use them where a real browser would only be slower.
import WebSocket from 'ws';

interface StudentState {
  student: { id: string; name: string };
  labs: { slug: string; completed: boolean; best?: unknown; inProgress: boolean }[];
  current?: {
    status: 'running' | 'starting' | 'queued';
    slug: string;
    place?: number;
    nodes?: { node: string; addresses: string[] }[];
    /** The walk's state (src/walk/session.ts WalkState), the parts a simulated student reads. */
    walk?: {
      phase: 'busy' | 'predict' | 'task' | 'menu' | 'ended';
      doing?: string;
      lab: { steps: number };
      step?: {
        index: number;
        id: string;
        title: string;
        prediction?: { choices: { key: string; text: string }[]; answer?: string };
        task?: { prompt: string; attempts: number; outcome?: 'done' | 'solution'; lastCheck?: { attempt: number; passed: boolean } };
        checks: { passed: boolean; expected: string; seen: string[] }[];
      };
      score: { tasks: { done: number; total: number }; checks: { met: number; total: number } };
    };
  };
  notice?: string;
  error?: string;
}

export class ClassClient {
  cookie = '';
  csrf = '';
  state: StudentState | undefined;
  private waiters: (() => void)[] = [];
  private stream: AbortController | undefined;

  constructor(readonly base: string) {}

  get origin(): string {
    return new URL(this.base).origin;
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { Origin: this.origin, ...(this.cookie ? { Cookie: this.cookie } : {}), ...extra };
  }

  private keepCookie(r: Response): void {
    const set = r.headers.get('set-cookie');
    if (set) this.cookie = set.split(';')[0]!;
  }

  /** Join with the class code and a name. */
  async join(code: string, name: string): Promise<void> {
    const r = await fetch(new URL('/api/join', this.base), {
      method: 'POST',
      headers: this.headers({ 'Content-Type': 'application/json' }),
      body: JSON.stringify({ code, name }),
    });
    if (!r.ok) throw new Error(`join: ${r.status} ${await r.text()}`);
    this.keepCookie(r);
    await this.me();
  }

  /** Open a personal link (as the browser follows it: a cookie, then the page). */
  async link(url: string): Promise<void> {
    const r = await fetch(url, { redirect: 'manual', headers: this.headers() });
    if (r.status !== 303) throw new Error(`link: ${r.status}`);
    this.keepCookie(r);
    await this.me();
  }

  async me(): Promise<StudentState> {
    const r = await fetch(new URL('/api/me', this.base), { headers: this.headers() });
    if (!r.ok) throw new Error(`me: ${r.status} ${await r.text()}`);
    const b = (await r.json()) as { csrf: string; state: StudentState };
    this.csrf = b.csrf;
    this.state = b.state;
    return b.state;
  }

  async post(path: string, body: unknown = {}): Promise<{ status: number; body: unknown }> {
    const r = await fetch(new URL(path, this.base), {
      method: 'POST',
      headers: this.headers({ 'Content-Type': 'application/json', 'X-CSRF-Token': this.csrf }),
      body: JSON.stringify(body),
    });
    return { status: r.status, body: await r.json().catch(() => undefined) };
  }

  async must(path: string, body: unknown = {}): Promise<void> {
    const r = await this.post(path, body);
    if (r.status >= 300) throw new Error(`${path}: ${r.status} ${JSON.stringify(r.body)}`);
  }

  /** Follow the page's event stream: every state the server sends is kept in `state`. */
  follow(): void {
    if (this.stream) return;
    const abort = new AbortController();
    this.stream = abort;
    void (async () => {
      const r = await fetch(new URL('/api/me/events', this.base), { headers: this.headers(), signal: abort.signal });
      const reader = r.body!.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const frame = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const event = /^event: (.*)$/m.exec(frame)?.[1];
          const data = /^data: (.*)$/m.exec(frame)?.[1];
          if (event === 'state' && data) {
            this.state = JSON.parse(data) as StudentState;
            const w = this.waiters;
            this.waiters = [];
            for (const f of w) f();
          }
        }
      }
    })().catch(() => undefined);
  }

  /** Wait until the state satisfies `ok`, or fail after timeoutMs with the last state seen. */
  async until(what: string, ok: (s: StudentState) => boolean, timeoutMs = 60_000): Promise<StudentState> {
    this.follow();
    const deadline = Date.now() + timeoutMs;
    while (!this.state || !ok(this.state)) {
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `${what}: not within ${timeoutMs} ms; last state: ${JSON.stringify(this.state?.current ?? this.state)}`.slice(0, 3000),
        );
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 1000));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.state;
  }

  async terminal(node: string, path = `/ws/term?node=${node}`): Promise<TermClient> {
    const u = new URL(path, this.base);
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(u, { headers: this.headers() });
    const t = new TermClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`terminal ${node}: HTTP ${res.statusCode}`)));
    });
    return t;
  }

  close(): void {
    this.stream?.abort();
  }
}

class TermClient {
  text = '';
  controls: { type: string; message?: string }[] = [];
  private waiters: (() => void)[] = [];
  closed: Promise<number>;

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data, binary) => {
      if (binary) this.text += Buffer.from(data as Buffer).toString('utf8');
      else this.controls.push(JSON.parse(String(data)) as { type: string });
      const w = this.waiters;
      this.waiters = [];
      for (const f of w) f();
    });
    this.closed = new Promise((resolve) => ws.once('close', (code) => resolve(code)));
  }

  type(keys: string): void {
    this.ws.send(`0${keys}`);
  }

  resize(cols: number, rows: number): void {
    this.ws.send(`1${JSON.stringify({ cols, rows })}`);
  }

  async until(re: RegExp, timeoutMs = 20_000, from = 0): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!re.test(this.text.slice(from))) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`terminal: ${re} not within ${timeoutMs} ms; last output: ${JSON.stringify(this.text.slice(-600))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 500));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** One key typed and its echo seen: ms through the server and the shell. */
  async echo(ch: string): Promise<number> {
    const from = this.text.length;
    const t0 = performance.now();
    this.type(ch);
    await this.until(new RegExp(ch.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), 10_000, from);
    return performance.now() - t0;
  }

  close(): void {
    this.ws.close();
  }
}
