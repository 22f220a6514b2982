// The converter's thin I/O layer: reads the Compose file, its .env (or
// --env-file), and hands the converter the files beside it and the process
// environment.
import fs from 'node:fs';
import path from 'node:path';
import { OutpostError } from '../core/errors.js';
import type { FileKind, FileSource } from './context.js';
import { convertCompose, type Conversion } from './convert.js';
import { DotenvError, parseDotenv } from './dotenv.js';

export interface LoadOptions {
  file: string;
  envFile?: string;
  name?: string;
  registry?: string;
  /** the variables of the deploying shell; the process's by default */
  env?: Record<string, string | undefined>;
}

export function loadCompose(o: LoadOptions): Conversion {
  const file = path.resolve(o.file);
  const text = readText(file, o.file);
  const dir = path.dirname(file);
  // Compose substitutes from the whole shell environment, so every variable is
  // a candidate here (not only Outpost's documented ones)
  const shell = o.env ?? process.env;
  const dotenv = readDotenv(o.envFile ? path.resolve(o.envFile) : path.join(dir, '.env'), o.envFile !== undefined, shell);
  return convertCompose({
    text, file: o.file, dirName: path.basename(dir), name: o.name, registry: o.registry,
    env: (n) => shell[n] ?? dotenv[n],
    files: dirFiles(dir),
  });
}

function readText(file: string, shown: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new OutpostError('E_USAGE', `cannot read ${shown}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

function readDotenv(file: string, required: boolean, shell: Record<string, string | undefined>): Record<string, string> {
  if (!required && !fs.existsSync(file)) return {};
  const text = readText(file, file);
  try {
    return parseDotenv(text, (n) => shell[n]);
  } catch (e) {
    if (e instanceof DotenvError) throw new OutpostError('E_INVALID', `${file}:${e.line}: ${e.message}`, { path: file });
    throw e;
  }
}

/** Files named relative to the Compose file's directory. */
export function dirFiles(dir: string): FileSource {
  const resolve = (rel: string) => path.resolve(dir, rel);
  return {
    resolve,
    read(rel) {
      try {
        return { text: fs.readFileSync(resolve(rel), 'utf8') };
      } catch (e) {
        return { error: (e as NodeJS.ErrnoException).code ?? (e as Error).message };
      }
    },
    kind(rel): FileKind {
      try {
        const st = fs.statSync(resolve(rel));
        if (st.isFile()) return 'file';
        if (st.isDirectory()) return fs.readdirSync(resolve(rel)).length ? 'dir' : 'empty-dir';
        return 'other';
      } catch {
        return 'missing';
      }
    },
  };
}
