// Host-side memory figures, Linux only: a container's cgroup memory (what `docker stats` shows), the resident
// memory of dockerd and containerd, the per-container containerd shims, and the host's MemAvailable.
import { readFileSync, readdirSync } from 'node:fs';

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Like `docker stats`: usage minus inactive file cache (cgroup v1, then v2 layouts). */
export function containerMemory(id: string): number | undefined {
  for (const dir of [`/sys/fs/cgroup/memory/docker/${id}`, `/sys/fs/cgroup/memory/system.slice/docker-${id}.scope`]) {
    const usage = read(`${dir}/memory.usage_in_bytes`);
    if (usage === undefined) continue;
    const inactive = /^total_inactive_file (\d+)$/m.exec(read(`${dir}/memory.stat`) ?? '');
    return Number(usage) - Number(inactive?.[1] ?? 0);
  }
  for (const dir of [`/sys/fs/cgroup/system.slice/docker-${id}.scope`, `/sys/fs/cgroup/docker/${id}`]) {
    const usage = read(`${dir}/memory.current`);
    if (usage === undefined) continue;
    const inactive = /^inactive_file (\d+)$/m.exec(read(`${dir}/memory.stat`) ?? '');
    return Number(usage) - Number(inactive?.[1] ?? 0);
  }
  return undefined;
}

function processes(): { pid: number; cmdline: string[] }[] {
  const out: { pid: number; cmdline: string[] }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const c = read(`/proc/${name}/cmdline`);
    if (c) out.push({ pid: Number(name), cmdline: c.split('\0').filter(Boolean) });
  }
  return out;
}

function statusKb(pid: number, field: string): number | undefined {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(read(`/proc/${pid}/status`) ?? '');
  return m ? Number(m[1]) * 1024 : undefined;
}

/** Proportional set size: shared pages (the shim binary) divided among the processes that map them. */
function pss(pid: number): number | undefined {
  const m = /^Pss:\s+(\d+) kB$/m.exec(read(`/proc/${pid}/smaps_rollup`) ?? '');
  return m ? Number(m[1]) * 1024 : undefined;
}

interface HostMemory {
  dockerdRss?: number;
  containerdRss?: number;
  memAvailable?: number;
}

export function hostMemory(): HostMemory {
  const procs = processes();
  const rssOf = (bin: string) => {
    const p = procs.find((x) => x.cmdline[0]?.endsWith(`/${bin}`) || x.cmdline[0] === bin);
    return p ? statusKb(p.pid, 'VmRSS') : undefined;
  };
  const avail = /^MemAvailable:\s+(\d+) kB$/m.exec(read('/proc/meminfo') ?? '');
  const r: HostMemory = {};
  const d = rssOf('dockerd');
  const c = rssOf('containerd');
  if (d !== undefined) r.dockerdRss = d;
  if (c !== undefined) r.containerdRss = c;
  if (avail) r.memAvailable = Number(avail[1]) * 1024;
  return r;
}

/** PSS and RSS of the containerd shims that run these containers (one shim process per container here). */
export function shimMemory(containerIds: string[]): { pss: number; rss: number; found: number } {
  const ids = new Set(containerIds);
  let p = 0;
  let r = 0;
  let found = 0;
  for (const proc of processes()) {
    if (!proc.cmdline[0]?.includes('containerd-shim')) continue;
    const i = proc.cmdline.indexOf('-id');
    if (i < 0 || !ids.has(proc.cmdline[i + 1] ?? '')) continue;
    found++;
    p += pss(proc.pid) ?? 0;
    r += statusKb(proc.pid, 'VmRSS') ?? 0;
  }
  return { pss: p, rss: r, found };
}
