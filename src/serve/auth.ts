// Who is asking, for every request and WebSocket of `lab serve`: secrets that cannot be guessed (256 bits),
// kept on disk only as hashes where the server never needs them back (sessions), compared in constant time;
// cookies that scripts cannot read (HttpOnly), that other sites' pages do not send along with their requests
// (SameSite=Lax, and a CSRF token on every change), Secure and __Host- under TLS; the Origin of a change or a
// WebSocket must be this server's; joining with a code is rate-limited per address and overall.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** A new secret: 32 random bytes, URL-safe. */
export function newSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** A join code students can type: 8 of A-Z and 2-9 without 0, O, 1, I, L (about 40 bits; joins are rate-limited). */
export function newJoinCode(): string {
  const alphabet = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';
  const bytes = randomBytes(8);
  return [...bytes].map((b) => alphabet[b % alphabet.length]).join('');
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** Equal, in time that does not depend on where they differ. */
export function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** A secret as it may appear in a URL or cookie: base64url, 43 characters. Anything else is not looked up. */
export const SECRET_SHAPE = /^[A-Za-z0-9_-]{43}$/;

export function cookieName(tls: boolean, role: 'student' | 'teacher'): string {
  // __Host-: the browser keeps it only if Secure, Path=/ and no Domain, so no sibling host can set or shadow it.
  return `${tls ? '__Host-' : ''}tcplab-${role}`;
}

export function readCookie(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

export function setCookie(name: string, value: string, opts: { tls: boolean; maxAgeS?: number }): string {
  return [
    `${name}=${value}`,
    'Path=/',
    'HttpOnly',
    'SameSite=Lax',
    ...(opts.tls ? ['Secure'] : []),
    ...(opts.maxAgeS !== undefined ? [`Max-Age=${opts.maxAgeS}`] : []),
  ].join('; ');
}

/** The host[:port] a request was addressed to, lower-case. */
function hostOf(req: IncomingMessage): string {
  return (req.headers.host ?? '').toLowerCase();
}

/**
 * Does the request come from a page of this server? Browsers send Origin with every WebSocket and every POST;
 * it must name this host (as the request addressed it) or the public address the class file gives.
 * No Origin at all: not a browser (curl, the benchmark's clients), which carry no cookies of a victim either;
 * allowed only where `required` is false.
 */
export function originAllowed(req: IncomingMessage, publicUrl: string | undefined, required: boolean): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return !required;
  if (origin === 'null') return false;
  let o: URL;
  try {
    o = new URL(origin);
  } catch {
    return false;
  }
  if (publicUrl && o.origin === new URL(publicUrl).origin) return true;
  return o.host.toLowerCase() === hostOf(req);
}

/** Requests in a sliding window, per key (an address) and in all: joining with a code, guessing links. */
export class RateLimit {
  private readonly hits = new Map<string, number[]>();
  private all: number[] = [];

  constructor(
    private readonly perKey: number,
    private readonly total: number,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Count one attempt; false when this key or everyone together is over the limit (the attempt is refused). */
  take(key: string): boolean {
    const t = this.now();
    const from = t - this.windowMs;
    const mine = (this.hits.get(key) ?? []).filter((x) => x > from);
    this.all = this.all.filter((x) => x > from);
    if (mine.length >= this.perKey || this.all.length >= this.total) {
      this.hits.set(key, mine);
      return false;
    }
    mine.push(t);
    this.all.push(t);
    this.hits.set(key, mine);
    // Forget addresses whose window has passed, so the map cannot grow without end.
    if (this.hits.size > 10_000) for (const [k, v] of this.hits) if (!v.some((x) => x > from)) this.hits.delete(k);
    return true;
  }

  /** Over the limit already (nothing counted): a class behind one address (a school's NAT) joins at once, so
   *  only failures are counted, and only they can shut an address out. */
  blocked(key: string): boolean {
    const from = this.now() - this.windowMs;
    const mine = (this.hits.get(key) ?? []).filter((x) => x > from).length;
    const all = this.all.filter((x) => x > from).length;
    return mine >= this.perKey || all >= this.total;
  }

  /** Seconds until this key may try again. */
  retryAfterS(key: string): number {
    const oldest = (this.hits.get(key) ?? [])[0] ?? this.all[0] ?? this.now();
    return Math.max(1, Math.ceil((oldest + this.windowMs - this.now()) / 1000));
  }
}

/** The client's address, for rate limits: the socket's (a proxy's X-Forwarded-For is not trusted by default). */
export function clientAddress(req: IncomingMessage, trustProxy: boolean): string {
  if (trustProxy) {
    const fwd = req.headers['x-forwarded-for'];
    const first = (Array.isArray(fwd) ? fwd[0] : fwd)?.split(',')[0]?.trim();
    if (first) return first;
  }
  return req.socket.remoteAddress ?? '?';
}
