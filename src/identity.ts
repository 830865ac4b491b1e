// Who is who, in one place: the person running tcplab (whose labs `lab shell`, `check`, `status` and `stop` act
// on), the student whose per-student variants a lab gets, and the process that owns a lab instance (its labels
// say which user and which host:pid made it, so `lab clean --stale` and `lab ui` can tell whether it still runs).
import { readFileSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { LabError } from './errors.js';
import type { Lab } from './lab/schema.js';
import { LABEL } from './plan/plan.js';

/**
 * Who is running tcplab: whose labs `lab shell`, `lab check`, `lab status` and `lab stop` act on. The OS user,
 * unless TCPLAB_USER names someone (a workshop where everybody shares one login; tests that play two users).
 */
export function currentUser(): string {
  if (process.env.TCPLAB_USER) return process.env.TCPLAB_USER;
  try {
    return userInfo().username;
  } catch {
    // No passwd entry for this uid (some containers): the environment's name, or the uid itself.
    return process.env.USER || process.env.LOGNAME || `uid ${process.getuid?.() ?? '?'}`;
  }
}

/** Is this instance the current user's? Instances without an owner label belong to nobody in particular. */
export function isMine(li: { user?: string | undefined }, me = currentUser()): boolean {
  return li.user === me;
}

// ---- Students ----

/** A student id as a roster has it: also a directory name in the Gradescope and PrairieLearn outputs, so no
 *  slashes, no leading dot or dash, nothing a spreadsheet would take for a formula. */
export const STUDENT_ID = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$/;
export const STUDENT_ID_RULE = 'letters, digits and . _ @ + - (at most 64, starting with a letter or digit)';

/** Whose variants a lab instance gets when no student is named (tests, the benchmark). */
export const REFERENCE_STUDENT = 'reference';

/**
 * Who is doing the lab, for its variants: --student, else TCPLAB_STUDENT, else the login name. A name that
 * cannot be a student id is an error only where it matters (a lab with variants, or a submission).
 */
export function resolveStudent(given: string | undefined): { id: string; from: 'option' | 'environment' | 'login' } {
  const check = (id: string, from: 'option' | 'environment' | 'login') => {
    if (!STUDENT_ID.test(id))
      throw new LabError(
        `'${id}' (from ${from === 'option' ? '--student' : from === 'environment' ? 'TCPLAB_STUDENT' : 'your login name'}) cannot be a student id`,
        `a student id has ${STUDENT_ID_RULE}; give one with --student ID`,
      );
    return { id, from };
  };
  if (given !== undefined) return check(given, 'option');
  const env = process.env.TCPLAB_STUDENT;
  if (env) return check(env, 'environment');
  let login = 'student';
  try {
    login = userInfo().username || login;
  } catch {
    // No passwd entry (a container with an arbitrary uid): fall back to a fixed name.
  }
  return check(login, 'login');
}

/** The student a run is for: always when the lab has variants or one was given; otherwise only if the login
 *  name can be a student id (it is kept for `lab submit`, which can be told another). */
export function studentFor(lab: Pick<Lab, 'variants'>, given: string | undefined): string | undefined {
  if (given !== undefined || Object.keys(lab.variants ?? {}).length) return resolveStudent(given).id;
  try {
    return resolveStudent(undefined).id;
  } catch {
    return undefined;
  }
}

// ---- The process that owns an instance ----

/** This process as an instance's owner: host:pid, what its io.tcplab.pid label and the walk's state record. */
export function processOwner(): string {
  return `${hostname()}:${process.pid}`;
}

/** Labels that tell whose instance this is (the user, for `lab shell` and `lab stop` on a shared engine) and
 *  whether its process is still alive (for `lab clean --stale`). */
export function ownerLabels(owner = currentUser()): Record<string, string> {
  const run = process.env.TCPLAB_RUN;
  return {
    [LABEL.pid]: processOwner(),
    [LABEL.owner]: owner,
    [LABEL.created]: new Date().toISOString(),
    ...(run ? { [LABEL.run]: run.slice(0, 128) } : {}),
  };
}

/** Is this process alive? EPERM means it exists but belongs to someone else. */
function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether an instance's owning process still runs, from its labels: kept on purpose, made on another host,
 *  made before tcplab labelled owners, running, or gone (stale). */
export function ownerStatus(
  labels: Record<string, string>,
  host = hostname(),
  alive: (pid: number) => boolean = processAlive,
): 'stale' | 'running' | 'kept' | 'other-host' | 'unknown-owner' {
  if (labels[LABEL.keep] === 'true') return 'kept';
  const owner = labels[LABEL.pid];
  const m = owner ? /^(.*):(\d+)$/.exec(owner) : null;
  if (!m) return 'unknown-owner';
  if (m[1] !== host) return 'other-host';
  return alive(Number(m[2])) ? 'running' : 'stale';
}

/**
 * Is the process that made the instance (host:pid) alive on this host, and old enough to be that process? A busy
 * machine hands a pid to another process within minutes: one started after `since` (when the lab was created, or
 * its walk began) is not its owner.
 */
export function ownerAlive(owner: string | undefined, since: string | undefined): boolean {
  if (!owner || ownerStatus({ [LABEL.pid]: owner }) !== 'running') return false;
  const started = processStart(Number(owner.slice(owner.lastIndexOf(':') + 1)));
  const t = since === undefined ? NaN : Date.parse(since);
  // /proc's start time is in clock ticks after a boot time in whole seconds: allow a second either way.
  return started === undefined || Number.isNaN(t) || started <= t + 1000;
}

/** When a process started (ms since the epoch), from Linux's /proc; undefined elsewhere. */
function processStart(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces), from field 3; field 22 is the start time in ticks.
    const ticks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
    const boot = Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1]);
    const ms = (boot + ticks / 100) * 1000;
    return Number.isFinite(ms) ? ms : undefined;
  } catch {
    return undefined;
  }
}
