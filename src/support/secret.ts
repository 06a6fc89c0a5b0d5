import { inspect } from 'node:util';

const REDACTED = '[redacted]';

/** A secret value: prints, logs and serialises as `[redacted]`. Read it with `reveal()`. */
export class Secret<T = string> {
  readonly #value: T;
  constructor(value: T) {
    this.#value = value;
  }
  reveal(): T {
    return this.#value;
  }
  toString(): string {
    return REDACTED;
  }
  toJSON(): string {
    return REDACTED;
  }
  [inspect.custom](): string {
    return REDACTED;
  }
}

/** Replace every occurrence of the given secrets in a text (for child stderr we pass on). */
export function scrub(text: string, secrets: Array<string | undefined>): string {
  let out = text;
  for (const s of secrets) {
    if (s && s.length >= 3) out = out.split(s).join(REDACTED);
  }
  // Passwords in connection URLs, whoever wrote them.
  out = out.replace(/(postgres(?:ql)?:\/\/[^:/@\s]*:)[^@\s]*@/gi, `$1${REDACTED}@`);
  out = out.replace(/AGE-SECRET-KEY-[0-9A-Z-]+/g, REDACTED);
  return out;
}
