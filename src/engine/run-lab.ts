// A whole lab, headless: up, every step (tasks done by their solutions), down. `lab grade` and `lab start
// --yes` use this; the guided walk drives an Instance step by step itself.
import createDebug from 'debug';
import type { Lab, Step } from '../lab/schema.js';
import { EngineError, LabError, InterruptedError } from '../errors.js';
import type { Runtime } from '../runtime/runtime.js';
import { summarize, type LabResult, type StepResult } from '../grade/grade.js';
import { throwIfAborted } from './abort.js';
import { realClock } from './clock.js';
import type { Instance, InstanceOptions, StepAnswer } from './instance.js';
import { createInstance } from './provision.js';
import { DEFAULT_ANSWER_TIMEOUT_MS } from './answer.js';
import { parseDuration } from '../lab/duration.js';
import type { AnswerScript } from '../lab/answer-script.js';

const log = createDebug('lab');

interface GradeOptions extends InstanceOptions {
  /** Called once the instance exists, so a caller can register it for cleanup. */
  onInstance?: (i: Instance) => void;
  /**
   * A student's answers, by task step id (lab grade --submissions): each task runs its answer, or nothing when
   * the submission has none for it, instead of its solution.
   */
  answers?: { byStep: Record<string, AnswerScript[]>; timeoutMs?: number };
  /** Asked after each step: a reason to run no further (nothing left could change the score), or undefined. */
  stopWhen?: (steps: StepResult[]) => string | undefined;
}

export async function runLab(runtime: Runtime, lab: Lab, opts: GradeOptions): Promise<LabResult> {
  const clock = opts.clock ?? realClock;
  const t0 = clock.now();
  const instance = await createInstance(runtime, lab, opts);
  opts.onInstance?.(instance);
  const steps: StepResult[] = [];
  let error: string | undefined;
  let failing = false;
  let settled: string | undefined;
  try {
    for (const [i, step] of lab.steps.entries()) {
      const answer = opts.answers && step.task ? answerFor(step, opts.answers) : undefined;
      steps.push(await instance.runStep(step, i, answer ? { answer } : {}));
      settled = opts.stopWhen?.(steps);
      if (settled) {
        log('%s: stopping after step %s: %s', instance.id, step.id, settled);
        break;
      }
    }
    // Ctrl-C's cleanup may remove the containers under a running step, which then fails like a broken lab:
    // once interrupted, the outcome is the interrupt, whatever the step saw.
    throwIfAborted(opts.signal, 'lab');
  } catch (e) {
    // The engine unreachable or refusing (a container removed by hand): nothing was graded, so this is not a
    // failed lab but the engine's error, exit 3 (README), after the teardown below.
    const engineTrouble = e instanceof EngineError && e.exitCode === 3;
    if (e instanceof InterruptedError || engineTrouble || !(e instanceof LabError) || opts.signal?.aborted) {
      failing = true;
      throwIfAborted(opts.signal, 'lab');
      throw e;
    }
    error = e.message;
  } finally {
    if (!opts.keep || opts.signal?.aborted) {
      // When the lab already failed (the engine went away, say), that error is the one to report, not the
      // teardown's; `lab clean` removes the rest once the engine is back.
      await instance.down().catch((e: unknown) => {
        if (!failing) throw e;
        log('teardown after a failure: %s', (e as Error).message);
      });
    } else instance.close();
  }
  return { ...summarize(instance.plan.lab, instance.id, steps, clock.now() - t0, error), ...(settled ? { settled } : {}) };
}

/** The time limit: the task's own (task.timeout), capped by the grader's (--task-timeout), else the default. */
function answerFor(step: Step, answers: NonNullable<GradeOptions['answers']>): StepAnswer {
  const own = step.task?.timeout ? parseDuration(step.task.timeout) : DEFAULT_ANSWER_TIMEOUT_MS;
  return { scripts: answers.byStep[step.id] ?? [], timeoutMs: Math.min(own, answers.timeoutMs ?? Infinity) };
}
