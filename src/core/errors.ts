// One error type for the whole system: a stable code users can search for, a
// message a person can act on, the path of the bad field when there is one, and
// the HTTP status it maps to. The API turns it into {"error": {...}} in one place.
export type ErrorCode =
  | 'E_INVALID' | 'E_BAD_JSON' | 'E_BAD_YAML' | 'E_NOT_FOUND' | 'E_UNAUTHORIZED'
  | 'E_UNSCHEDULABLE' | 'E_CONFLICT' | 'E_IMAGE_NOT_FOUND' | 'E_PULL_FAILED'
  | 'E_CREATE_FAILED' | 'E_START_FAILED' | 'E_EXITED' | 'E_HEALTH_TIMEOUT' | 'E_UNHEALTHY' | 'E_ROLLED_BACK' | 'E_DISK_FULL'
  | 'E_NODE_OFFLINE' | 'E_NO_SERVER' | 'E_TOO_LARGE' | 'E_INTERNAL' | 'E_USAGE'
  | 'E_BAD_POINT' | 'E_UNKNOWN_STREAM' | 'E_HUB_OFF';

const STATUS: Partial<Record<ErrorCode, number>> = {
  E_INVALID: 400, E_BAD_JSON: 400, E_BAD_POINT: 400, E_UNKNOWN_STREAM: 404, E_HUB_OFF: 503, E_BAD_YAML: 400, E_USAGE: 400, E_TOO_LARGE: 413,
  E_NOT_FOUND: 404, E_UNAUTHORIZED: 401, E_UNSCHEDULABLE: 409, E_CONFLICT: 409,
  E_NODE_OFFLINE: 503, E_NO_SERVER: 503,
};

export class OutpostError extends Error {
  readonly code: ErrorCode;
  readonly path?: string;
  readonly details?: unknown;
  constructor(code: ErrorCode, message: string, opts: { path?: string; details?: unknown; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'OutpostError';
    this.code = code;
    this.path = opts.path;
    this.details = opts.details;
  }
  get status(): number {
    return STATUS[this.code] ?? 500;
  }
  toJSON(): ErrorBody {
    const body: ErrorBody = { code: this.code, message: this.message };
    if (this.path !== undefined) body.path = this.path;
    if (this.details !== undefined) body.details = this.details;
    return body;
  }
}

export interface ErrorBody {
  code: string;
  message: string;
  path?: string;
  details?: unknown;
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Errors from the HTTP layer (Fastify's body parsing, limits) as OutpostErrors; anything else is internal. */
export function toOutpostError(err: unknown): OutpostError {
  if (err instanceof OutpostError) return err;
  const e = err as { code?: string; statusCode?: number; message?: string };
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new OutpostError('E_TOO_LARGE', 'request body too large');
  if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return new OutpostError('E_INVALID', 'send the body as application/json');
  if (e.code?.startsWith('FST_ERR_CTP') || (e.statusCode === 400 && e instanceof SyntaxError)) {
    return new OutpostError('E_BAD_JSON', `request body is not valid JSON: ${e.message ?? ''}`);
  }
  if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) return new OutpostError('E_INVALID', e.message ?? 'bad request');
  return new OutpostError('E_INTERNAL', 'internal error', { cause: err });
}
