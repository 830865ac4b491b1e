import { DURATION_PATTERN } from './schema.js';

/** "500ms" | "5s" | "1.5s" | "2m" -> milliseconds. The schema has already checked the form. */
export function parseDuration(text: string): number {
  const m = DURATION_PATTERN.exec(text);
  if (!m) throw new Error(`not a duration: ${text}`);
  const value = Number(m[1] + (m[2] ?? ''));
  const unit = m[3] === 'ms' ? 1 : m[3] === 's' ? 1000 : 60_000;
  return Math.round(value * unit);
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}
