/**
 * Text Postgres cannot store. `text` columns refuse U+0000 and `jsonb`
 * refuses both `\u0000` and unpaired UTF-16 surrogates, as an error at write
 * time: a request carrying one would pass validation and then fail deep in
 * a transaction (a 500, or a saga retrying a write that can never succeed).
 * Checked once, on every validated input (workers/lib/router.ts), so no
 * route can forget it.
 */
import type { FieldIssue } from './router';

const NUL = '\u0000';
/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why `s` cannot be stored, or undefined when it can. */
export function unstorable(s: string): string | undefined {
  if (s.includes(NUL)) return 'Contains a NUL character (U+0000).';
  if (LONE_SURROGATE.test(s)) return 'Contains an unpaired UTF-16 surrogate.';
  return undefined;
}

/**
 * Every string (keys included) in a parsed value that cannot be stored, as
 * field issues located like zod's (`in`, dotted path). Stops after `max`.
 */
export function unstorableFields(value: unknown, where: string, max = 10): FieldIssue[] {
  const issues: FieldIssue[] = [];
  const visit = (v: unknown, path: (string | number)[]) => {
    if (issues.length >= max) return;
    if (typeof v === 'string') {
      const why = unstorable(v);
      if (why) issues.push({ in: where, field: path.join('.') || '(root)', message: why });
    } else if (Array.isArray(v)) {
      v.forEach((item, i) => visit(item, [...path, i]));
    } else if (v !== null && typeof v === 'object') {
      for (const [k, item] of Object.entries(v)) {
        const why = unstorable(k);
        if (why) issues.push({ in: where, field: [...path, k].join('.'), message: `Field name: ${why}` });
        visit(item, [...path, k]);
      }
    }
  };
  visit(value, []);
  return issues;
}

const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * A copy of a parsed JSON value with every character Postgres cannot store
 * replaced by U+FFFD, keys included. For input we must keep rather than
 * refuse: a provider's signed webhook, which would be redelivered forever if
 * answered 400.
 */
export function toStorable<T>(value: T): T {
  const clean = (s: string) => s.replace(UNSTORABLE, '\uFFFD');
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return clean(v);
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, item]) => [clean(k), walk(item)]));
    return v;
  };
  return walk(value) as T;
}
