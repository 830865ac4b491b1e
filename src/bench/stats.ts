// Small statistics and formatting helpers for the benchmark.

export function median(xs: number[]): number {
  return quantile(xs, 0.5);
}

function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

export function ms(x: number): string {
  if (!Number.isFinite(x)) return 'n/a';
  return x >= 10_000 ? `${(x / 1000).toFixed(1)} s` : `${Math.round(x)} ms`;
}

export function mb(bytes: number): string {
  // Decimal megabytes, as `docker images` prints sizes.
  return Number.isFinite(bytes) ? `${(bytes / 1e6).toFixed(1)} MB` : 'n/a';
}

export function summary(xs: number[]): string {
  if (!xs.length) return 'n/a';
  return `median ${ms(median(xs))} (min ${ms(Math.min(...xs))}, p90 ${ms(quantile(xs, 0.9))}, n=${xs.length})`;
}

export async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t0 = performance.now();
  const r = await fn();
  return [performance.now() - t0, r];
}
