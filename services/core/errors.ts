/** One error type for the whole product; the CLI and the API map it to their surfaces in one place. */

export interface Problem {
  /** RFC 6901 JSON pointer into the input ("" for the whole document). */
  path: string;
  message: string;
}

export type ErrorCode =
  | 'invalid_input'
  | 'not_found'
  | 'conflict'
  | 'unavailable'
  | 'apply_failed'
  | 'system'
  | 'unauthorized'
  | 'forbidden'
  | 'throttled'
  | 'too_large'
  | 'bad_request'
  | 'unsupported_media_type'
  | 'internal';

const exitCodes: Record<ErrorCode, number> = {
  invalid_input: 2,
  not_found: 2,
  conflict: 1,
  unavailable: 1,
  apply_failed: 1,
  system: 1,
  unauthorized: 1,
  forbidden: 1,
  throttled: 1,
  too_large: 2,
  bad_request: 2,
  unsupported_media_type: 2,
  internal: 1,
};

/** HTTP status for each code (the API maps errors in one place with this). */
export const httpStatus: Record<ErrorCode, number> = {
  invalid_input: 422,
  not_found: 404,
  conflict: 409,
  unavailable: 503,
  apply_failed: 422,
  system: 500,
  unauthorized: 401,
  forbidden: 403,
  throttled: 429,
  too_large: 413,
  bad_request: 400,
  unsupported_media_type: 415,
  internal: 500,
};

export class RampartError extends Error {
  readonly code: ErrorCode;
  /** Problems with the input, each with a JSON pointer (named so, not `details`, which test runners read). */
  readonly problems: Problem[];

  /** For 'throttled': seconds until a retry can succeed. */
  retryAfterSeconds?: number;

  constructor(code: ErrorCode, message: string, problems: Problem[] = []) {
    super(message);
    this.name = 'RampartError';
    this.code = code;
    this.problems = problems;
  }

  get exitCode(): number {
    return exitCodes[this.code];
  }

  toJSON(): { code: ErrorCode; message: string; details: Problem[] } {
    return { code: this.code, message: this.message, details: this.problems };
  }

  static from(err: unknown): RampartError {
    if (err instanceof RampartError) return err;
    const message = err instanceof Error ? err.message : String(err);
    return new RampartError('internal', message);
  }

  static invalid(details: Problem[], message = 'invalid input'): RampartError {
    return new RampartError('invalid_input', message, details);
  }
}

/** Escape one reference token of a JSON pointer (RFC 6901). */
export function pointerToken(token: string | number): string {
  if (typeof token === 'number') return String(token);
  return token.includes('~') || token.includes('/') ? token.replace(/~/g, '~0').replace(/\//g, '~1') : token;
}

export function pointer(path: ReadonlyArray<string | number | symbol>): string {
  return path.map((p) => '/' + pointerToken(typeof p === 'symbol' ? String(p.description) : p)).join('');
}

export function formatProblems(problems: Problem[]): string {
  return problems.map((p) => `${p.path || '/'}: ${p.message}`).join('\n');
}
