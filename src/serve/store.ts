// What `lab serve` keeps, as plain files under the class's state directory: no database, nothing to compile.
//   class.json                 the class's id (labels its labs), when it was first served
//   secrets.json     (0600)    the instructor's secret and each roster student's link secret: printed again at
//                              every start, so they are kept as they are; the folder is the instructor's
//   links.csv        (0600)    id, name, personal link: for a mail merge
//   sessions.json    (0600)    browser sessions, by the hash of their cookie (a stolen file logs nobody in)
//   students/<id>.json         one student: who, their running lab, per lab the checks made and the best score
//   students/<id>/             the walk's own files for that student (src/walk/state-files.ts): the running
//                              walk's record (to resume it), task attempts, progress, what was typed (work/)
//   exports/<lab>-<time>/      gradebooks the dashboard exported (CSV, JUnit, Gradescope, PrairieLearn)
// Every write is a whole file written beside and renamed over the old one: a crash leaves the old or the new.
import { chmodSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LabError } from '../errors.js';
import { STUDENT_ID } from '../identity.js';
import type { Plan } from '../plan/plan.js';
import { hashSecret, newSecret } from './auth.js';
import type { StepResult } from '../grade/grade.js';
import type { Score } from '../walk/state-files.js';

/** One student's runs of one lab, beside what the walk keeps itself (src/walk/state-files.ts, a folder per
 *  student): what the gradebook needs, the checks each step of the latest run made. */
export interface LabRecord {
  slug: string;
  id: number;
  title: string;
  startedAt?: string;
  /** The latest run's steps as the engine checked them (task checks and step checks), for the scores. */
  results: StepResult[];
  /** The latest run reached the end of the lab. */
  finished: boolean;
  completed: boolean;
  score?: Score;
  best?: Score;
  /** How many labs of this were started. */
  runs: number;
}

export interface CurrentLab {
  slug: string;
  instance: string;
  plan: Plan;
  startedAt: string;
}

export interface StudentRecord {
  id: string;
  name: string;
  /** How they joined. */
  via: 'roster' | 'code';
  joinedAt?: string;
  labs: Record<string, LabRecord>;
  /** The lab running for them, if any: after a restart the server reattaches it. */
  current?: CurrentLab;
  /** Something to tell the student on their next visit (their lab was stopped while they were away). */
  notice?: string;
}

interface Secrets {
  teacher: string;
  links: Record<string, string>;
  joinCode?: string;
}

export interface SessionRecord {
  role: 'student' | 'teacher';
  student?: string;
  /** Sent back by the page with every change (X-CSRF-Token). */
  csrf: string;
  createdAt: string;
}

function writeFile(path: string, text: string, mode?: number): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text, mode === undefined ? {} : { mode });
  if (mode !== undefined) chmodSync(tmp, mode);
  renameSync(tmp, path);
}

function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

export class Store {
  readonly classId: string;
  private readonly secrets: Secrets;
  private readonly sessions: Map<string, SessionRecord>;
  private sessionsTimer: NodeJS.Timeout | undefined;

  constructor(readonly dir: string) {
    try {
      mkdirSync(join(dir, 'students'), { recursive: true, mode: 0o700 });
    } catch (e) {
      throw new LabError(
        `cannot use ${dir} as the class's state directory: ${(e as Error).message}`,
        'give another with state: in the class file',
      );
    }
    const cls = readJson<{ id: string; createdAt: string }>(join(dir, 'class.json'));
    if (cls && /^[a-f0-9]{12}$/.test(cls.id)) this.classId = cls.id;
    else {
      this.classId = hashSecret(newSecret()).slice(0, 12);
      writeFile(join(dir, 'class.json'), JSON.stringify({ id: this.classId, createdAt: new Date().toISOString() }, null, 2) + '\n');
    }
    this.secrets = readJson<Secrets>(join(dir, 'secrets.json')) ?? { teacher: newSecret(), links: {} };
    this.saveSecrets();
    const sessions = readJson<Record<string, SessionRecord>>(join(dir, 'sessions.json')) ?? {};
    this.sessions = new Map(Object.entries(sessions));
  }

  private saveSecrets(): void {
    writeFile(join(this.dir, 'secrets.json'), JSON.stringify(this.secrets, null, 2) + '\n', 0o600);
  }

  get teacherSecret(): string {
    return this.secrets.teacher;
  }

  /** The class's join code: the one given, else the one made up the first time (kept across restarts). */
  joinCode(given: string | 'generate' | undefined, make: () => string): string | undefined {
    if (!given) return undefined;
    const code = given === 'generate' ? (this.secrets.joinCode ?? make()) : given;
    if (this.secrets.joinCode !== code) {
      this.secrets.joinCode = code;
      this.saveSecrets();
    }
    return code;
  }

  /** A roster student's link secret (made the first time). */
  linkSecret(student: string): string {
    let s = this.secrets.links[student];
    if (!s) {
      s = this.secrets.links[student] = newSecret();
      this.saveSecrets();
    }
    return s;
  }

  /** Who a personal link is for; undefined for none. */
  studentOfLink(secret: string): string | undefined {
    for (const [id, s] of Object.entries(this.secrets.links)) if (s === secret) return id;
    return undefined;
  }

  writeLinks(rows: { id: string; name: string; link: string }[]): string {
    const path = join(this.dir, 'links.csv');
    const cell = (v: string) => (/[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
    writeFile(path, ['student,name,link', ...rows.map((r) => [r.id, r.name, r.link].map(cell).join(','))].join('\n') + '\n', 0o600);
    return path;
  }

  // ---- sessions ----

  newSession(rec: Omit<SessionRecord, 'csrf' | 'createdAt'>): { cookie: string; session: SessionRecord } {
    const cookie = newSecret();
    const session: SessionRecord = { ...rec, csrf: newSecret(), createdAt: new Date().toISOString() };
    this.sessions.set(hashSecret(cookie), session);
    this.saveSessionsSoon();
    return { cookie, session };
  }

  session(cookie: string | undefined): SessionRecord | undefined {
    if (!cookie) return undefined;
    return this.sessions.get(hashSecret(cookie));
  }

  private saveSessionsSoon(): void {
    if (this.sessionsTimer) return;
    this.sessionsTimer = setTimeout(() => this.flushSessions(), 200);
    this.sessionsTimer.unref();
  }

  flushSessions(): void {
    if (this.sessionsTimer) clearTimeout(this.sessionsTimer);
    this.sessionsTimer = undefined;
    writeFile(join(this.dir, 'sessions.json'), JSON.stringify(Object.fromEntries(this.sessions)) + '\n', 0o600);
  }

  // ---- students ----

  private studentFile(id: string): string {
    if (!STUDENT_ID.test(id)) throw new Error(`not a student id: ${id}`);
    return join(this.dir, 'students', `${id}.json`);
  }

  loadStudents(): StudentRecord[] {
    return readdirSync(join(this.dir, 'students'))
      .filter((n) => n.endsWith('.json') && STUDENT_ID.test(n.slice(0, -5)))
      .map((n) => readJson<StudentRecord>(join(this.dir, 'students', n)))
      .filter((s): s is StudentRecord => !!s && typeof s.id === 'string' && !!s.labs);
  }

  saveStudent(s: StudentRecord): void {
    writeFile(this.studentFile(s.id), JSON.stringify(s, null, 2) + '\n');
  }
}
