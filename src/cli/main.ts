#!/usr/bin/env node
// outpost: the command line's entry point (the package's bin). It parses argv
// with the program of program.ts and turns failures into a stable code on
// stderr and a non-zero exit status: 2 for E_USAGE, 1 otherwise.
import { OutpostError } from '../core/errors.js';
import { buildProgram } from './program.js';

buildProgram().parseAsync(process.argv).catch((e: unknown) => {
  if (e instanceof OutpostError) {
    process.stderr.write(`error ${e.code}: ${e.message}${e.path && !e.message.includes(e.path) ? ` (at ${e.path})` : ''}\n`);
    process.exit(e.code === 'E_USAGE' ? 2 : 1);
  }
  process.stderr.write(`error E_INTERNAL: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
