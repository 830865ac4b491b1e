// The command table: every command, in the order `lab help` lists them; main.ts dispatches from it. One file per
// command beside this one (src/cli/commands/<name>.ts exports <name>Command), with what only that command uses.
import type { Command } from '../command.js';
import { checkCommand } from './check.js';
import { cleanCommand } from './clean.js';
import { composeCommand } from './compose.js';
import { doctorCommand } from './doctor.js';
import { gradeCommand } from './grade.js';
import { imageCommand } from './image.js';
import { listCommand } from './list.js';
import { newCommand } from './new.js';
import { planCommand } from './plan.js';
import { serveCommand } from './serve.js';
import { shellCommand } from './shell.js';
import { startCommand } from './start.js';
import { statusCommand } from './status.js';
import { stopCommand } from './stop.js';
import { submitCommand } from './submit.js';
import { testCommand } from './test.js';
import { uiCommand } from './ui.js';
import { validateCommand } from './validate.js';

export const COMMANDS: Command[] = [
  listCommand,
  startCommand,
  gradeCommand,
  planCommand,
  stopCommand,
  cleanCommand,
  doctorCommand,
  validateCommand,
  testCommand,
  composeCommand,
  imageCommand,
  shellCommand,
  checkCommand,
  statusCommand,
  uiCommand,
  serveCommand,
  submitCommand,
  newCommand,
];
