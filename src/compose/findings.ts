// What a conversion found besides the manifest: notes about fields it kept in
// another form or did not keep, and problems that stop it. Each names the
// Compose path and line of its field. Pure.
import { OutpostError } from '../core/errors.js';
import { formatPath } from '../core/manifest.js';
import type { Path, Tree } from './tree.js';

/**
 * - ignored: obsolete or without effect here (`version`, `container_name`, `expose`)
 * - changed: honoured in Outpost's way (a fixed host port becomes a chosen one, a
 *   directory beside the file becomes a named volume)
 * - dropped: not honoured at all (`labels`, `stop_signal`, `tty`): the
 *   containers run without it
 * - warning: not about a field (a variable that is not set)
 */
export type NoteKind = 'ignored' | 'changed' | 'dropped' | 'warning';

export interface Finding {
  path: string;
  line: number | null;
}
export interface Note extends Finding {
  kind: NoteKind;
  message: string;
}
export interface Problem extends Finding {
  code: 'E_COMPOSE_UNSUPPORTED' | 'E_INVALID';
  message: string;
}

export class Findings {
  readonly notes: Note[] = [];
  readonly problems: Problem[] = [];
  constructor(private readonly tree: Tree) {}

  private at(path: Path): Finding {
    return { path: formatPath(path), line: this.tree.lineOf(path) };
  }

  note(path: Path, kind: NoteKind, message: string): void {
    this.notes.push({ ...this.at(path), kind, message });
  }
  /** a field Outpost cannot honour */
  unsupported(path: Path, message: string): void {
    this.problem(path, 'E_COMPOSE_UNSUPPORTED', message);
  }
  /** a value that is wrong in Compose or for Outpost */
  invalid(path: Path, message: string): void {
    this.problem(path, 'E_INVALID', message);
  }
  private problem(path: Path, code: Problem['code'], message: string): void {
    const at = this.at(path);
    // the first problem of a field is its cause (a failed substitution leaves a value nothing else can take)
    if (!this.problems.some((p) => p.path === at.path)) this.problems.push({ ...at, code, message });
  }
}

export function where(file: string, f: Finding): string {
  return `${file}${f.line ? `:${f.line}` : ''}: ${f.path || '(top level)'}`;
}

/** One error for every problem, in the file's order: the first's code and path, each on its own line. */
export function problemsError(file: string, found: Problem[]): OutpostError {
  const problems = [...found].sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
  const first = problems[0]!;
  const lines = problems.map((p) => `${where(file, p)}: ${p.message}${p.code !== first.code ? ` (${p.code})` : ''}`);
  const head = problems.length > 1 ? `${problems.length} fields of ${file} cannot be deployed:\n  ` : '';
  return new OutpostError(first.code, head + lines.join('\n  '), {
    path: first.path,
    details: problems.map((p) => ({ path: p.path, line: p.line, code: p.code, message: p.message })),
  });
}
