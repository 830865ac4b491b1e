// User-facing errors: each says what went wrong and what to do next. Anything else that reaches the top-level
// handler is a bug and is printed with its stack.

export class LabError extends Error {
  override name = 'LabError';
  constructor(
    message: string,
    /** What the user can do about it. */
    readonly hint?: string,
    /** Process exit code. */
    readonly exitCode = 2,
  ) {
    super(message);
  }
}

/** A lab file that cannot be used; every problem with file:line. */
export class LabFileError extends LabError {
  override name = 'LabFileError';
  constructor(
    readonly file: string,
    readonly problems: Problem[],
  ) {
    super(
      `${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'}\n` +
        problems.map((p) => `  ${formatProblem(file, p)}`).join('\n'),
      'fix the lines above; `lab validate FILE` checks a file without starting anything',
    );
  }
}

export interface Problem {
  line: number;
  column: number;
  path: string;
  message: string;
}

export function formatProblem(file: string, p: Problem): string {
  return `${file}:${p.line}:${p.column}: ${p.path ? `${p.path}: ` : ''}${p.message}`;
}

/** The Docker engine cannot be reached or refused what we asked. */
export class EngineError extends LabError {
  override name = 'EngineError';
}

/** The run was interrupted (Ctrl-C, SIGTERM); cleanup has happened by the time this is reported. */
export class InterruptedError extends LabError {
  override name = 'InterruptedError';
  constructor(signal: string) {
    super(`interrupted by ${signal}; the lab was removed`, undefined, signal === 'SIGINT' ? 130 : 143);
  }
}

export function isLabError(e: unknown): e is LabError {
  return e instanceof LabError;
}
