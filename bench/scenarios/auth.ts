/**
 * Sign-in scenarios: what one password check costs, and proof that a login
 * for an email with no account costs the same (enumeration safety).
 *
 * Every request is a `POST /api/auth/login` with a wrong password, so each
 * runs exactly one argon2id derivation (m = 19 MiB, t = 2, p = 1) plus one
 * indexed user lookup, and nothing is written: the runs can repeat without
 * changing the database. The accounts are registered by the prefill.
 * Rate limits are off in the bench instances (bench/lib/workers.ts).
 */
import type { RequestLine, Scenario } from './catalog';

/** Accounts registered for the run. */
const ACCOUNTS = 16;

const email = (i: number) => `bench.shopper.${i}@example.com`;

/** The sign-in scenarios, on the store (`edge`). */
export function authScenarios(): Scenario[] {
  const register: RequestLine[] = Array.from({ length: ACCOUNTS }, (_, i) => ({
    path: '/api/auth/register',
    region: 'sg',
    method: 'POST',
    body: JSON.stringify({ email: email(i), password: `bench-password-${i}`, name: `Bench Shopper ${i}` }),
  }));
  const login = (address: (i: number) => string): RequestLine[] =>
    Array.from({ length: ACCOUNTS }, (_, i) => ({
      path: '/api/auth/login',
      region: 'sg',
      method: 'POST',
      body: JSON.stringify({ email: address(i), password: 'not-the-password' }),
    }));
  return [
    {
      name: 'login-known-email',
      title: `Login with a wrong password for one of ${ACCOUNTS} real accounts: one argon2id verification each (401)`,
      target: 'edge',
      mode: 'random',
      prefill: register,
      measure: login(email),
      expect: '-',
      expectStatus: 401,
      cpuPerRequest: true,
      // One isolate runs one hash at a time: more connections only queue.
      connections: 4,
    },
    {
      name: 'login-unknown-email',
      title: 'Login for an email with no account: the same argon2id work against a dummy hash (401), so timing does not tell',
      target: 'edge',
      mode: 'random',
      measure: login((i) => `nobody.${i}@example.com`),
      expect: '-',
      expectStatus: 401,
      cpuPerRequest: true,
      // One isolate runs one hash at a time: more connections only queue.
      connections: 4,
    },
  ];
}
